import type { TableRef } from './ast.js';
import type { Hazard } from './checks/context.js';
import type { LintCatalog, LintCatalogTable, SmallTableLimits } from './types.js';

export const DEFAULT_SMALL_TABLE = { maxRows: 10_000, maxBytes: 10 * 1024 * 1024 } as const;

/**
 * How fast this kind of work goes, in MB of table per second, to turn a table's size into an expected lock hold.
 * Measured with `node --import tsx bench/lint-rates.ts` on the project's 2-core test machine (PostgreSQL 15.20, a
 * 2,000,000-row table of 204 MB: a CHECK's validation scan, a text index build, an ALTER COLUMN TYPE rewrite of the
 * table with its three indexes), while other jobs shared the machine. A faster disk or more memory goes faster:
 * read the hold time as an order of magnitude, and rerun the script on your own server.
 */
export const RATES_MB_PER_S: Readonly<Record<Hazard, number>> = Object.freeze({
  rewrite: 11,
  scan: 176,
  index: 8,
});

const WORK: Readonly<Record<Hazard, string>> = {
  rewrite: 'a rewrite of the table and its indexes',
  scan: 'a full scan',
  index: 'an index build',
};

/**
 * The catalog's entry for a table: the exact schema when written; else the first schema of the search path that has
 * it, as Postgres would resolve the name; else (the migration tool may set its own search path) `public`, else the
 * one table of that name. Two tables of that name elsewhere: unknown, and the statement is judged by itself.
 */
export function findTable(catalog: LintCatalog, t: TableRef): LintCatalogTable | undefined {
  if (t.schema !== undefined) return catalog.tables.find((c) => c.schema === t.schema && c.name === t.name);
  const named = catalog.tables.filter((c) => c.name === t.name);
  if (catalog.searchPath) {
    for (const schema of catalog.searchPath) {
      const found = named.find((c) => c.schema === schema);
      if (found) return found;
    }
  }
  return named.find((c) => c.schema === 'public') ?? (named.length === 1 ? named[0] : undefined);
}

/** Small: under both limits (a table never analyzed, rowsEstimate -1, is judged by its size alone). */
export function isSmall(table: LintCatalogTable, limits: SmallTableLimits | undefined): boolean {
  const maxRows = limits?.maxRows ?? DEFAULT_SMALL_TABLE.maxRows;
  const maxBytes = limits?.maxBytes ?? DEFAULT_SMALL_TABLE.maxBytes;
  return table.totalBytes < maxBytes && table.rowsEstimate < maxRows;
}

export function formatBytes(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  if (mb >= 1024) return `${(mb / 1024).toFixed(1)} GB`;
  if (mb >= 1) return `${mb.toFixed(mb >= 100 ? 0 : 1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} kB`;
}

/** How long, as the sentence puts it: "under a second", else "about 4 s", "about 12 min", "about 1.5 h". */
function holdTime(s: number): string {
  if (s < 1) return 'under a second';
  if (s < 90) return `about ${Math.round(s)} s`;
  if (s < 5400) return `about ${Math.round(s / 60)} min`;
  return `about ${(s / 3600).toFixed(1)} h`;
}

/** The sentence a finding on a large table gets: its rows and size, and how long the lock is expected to be held. */
export function sizeNote(table: LintCatalogTable, hazard: Hazard): string {
  const rows =
    table.rowsEstimate >= 0
      ? `~${Math.round(table.rowsEstimate).toLocaleString('en-US')} rows`
      : 'rows not yet counted (never analyzed)';
  const mb = table.totalBytes / (1024 * 1024);
  const rate = RATES_MB_PER_S[hazard];
  return `${table.schema}.${table.name} holds ${rows} in ${formatBytes(table.totalBytes)}: expect the lock to be held ${holdTime(mb / rate)} (${WORK[hazard]} at ~${rate} MB/s, measured by bench/lint-rates.ts; your server's disk decides).`;
}
