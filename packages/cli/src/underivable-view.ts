import type { UnderivableSummary } from '@phaseflag/postgres';
import type { Output } from './output.js';

/** Rows the backfill expression cannot derive, as `--json` prints them (the first ten, and the count). */
export interface UnderivableJson {
  count: number;
  rows: Array<{ key: unknown[]; oldValue: string | null; error: string; source: string; recordedAt: string }>;
}

export function underivableJson(u: UnderivableSummary): UnderivableJson {
  return {
    count: u.count,
    rows: u.rows.map((r) => ({
      key: r.key,
      oldValue: r.oldValue,
      error: r.error,
      source: r.source,
      recordedAt: new Date(r.recordedAt).toISOString(),
    })),
  };
}

/** The count and the first rows, one line each: key, old value, error, who found it. */
export function underivableLines(out: Output, u: UnderivableJson): string[] {
  if (u.count === 0) return [];
  return [
    `${out.c.red(`${u.count} row(s) the expression cannot derive`)} (they block verified; fix the rows or change the expression)`,
    ...u.rows.map(
      (r) =>
        `  key ${JSON.stringify(r.key)}  value ${JSON.stringify(r.oldValue)}  ${r.error}  ${out.c.dim(`(${r.source})`)}`,
    ),
    ...(u.count > u.rows.length ? [out.c.dim(`  … and ${u.count - u.rows.length} more`)] : []),
  ];
}

export function printUnderivable(out: Output, u: UnderivableSummary): void {
  for (const line of underivableLines(out, underivableJson(u))) out.note(line);
}
