import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { CatalogError, type Migration } from '@phaseflag/core';
import { Phaseflag, type PreflightResult } from '@phaseflag/postgres';
import {
  copyTable,
  sampleTableActivity,
  SpanRecorder,
  SyntheticTraffic,
  trafficKeys,
  type CopyTableResult,
  type TableRef,
  type TrafficSample,
} from '@phaseflag/postgres/internal';
import knexFactory, { type Knex } from 'knex';
import { importLocal } from '../local-module.js';
import type { Output } from '../output.js';
import { knexLog } from '../runtime.js';
import type { RehearseOptions } from './options.js';

export const PHASES = ['expand', 'dual-write', 'backfill', 'verify', 'read-new', 'contract'] as const;
export type RehearsePhase = (typeof PHASES)[number];

/** A window of the run: the baseline or one phase, with its start and end (epoch ms). */
export interface Window {
  readonly name: 'baseline' | RehearsePhase;
  readonly startMs: number;
  readonly endMs: number;
  /** When the step itself ended (the window may run on so its latencies have samples). */
  readonly stepEndMs: number;
}

export interface SourceFacts {
  readonly rowsEstimate: number;
  readonly totalBytes: number;
  readonly readsPerS: number;
  readonly writesPerS: number;
  /** Where the rates came from, in words. */
  readonly rates: string;
  /** How --rows was chosen, in words. */
  readonly rowsChosen: string;
}

export interface RehearsalRun {
  readonly migration: Migration;
  readonly table: TableRef;
  readonly source: SourceFacts;
  readonly copy: CopyTableResult;
  readonly preflight: PreflightResult;
  readonly windows: readonly Window[];
  readonly samples: readonly TrafficSample[];
  readonly recorder: SpanRecorder;
  /** Rows the backfill walked, those it changed (the rest the sync trigger had filled already), and how long it took. */
  readonly backfill: { rows: number; updated: number; durationMs: number } | null;
  /** The plan's statements (sql → step and description), to name each recorded statement. */
  readonly planned: ReadonlyMap<string, { step: string; description: string }>;
  /** Why the run stopped before contract (null when every phase ran). */
  readonly stoppedBy: string | null;
}

const DEFAULT_MAX_ROWS = 1_000_000;
/** Observed rates beyond this are capped: two cores shared with the embedded server cannot replay more honestly. */
const MAX_OBSERVED_RATE = 200;

export async function rehearse(
  out: Output,
  sourceUrl: string,
  migration: Migration,
  o: RehearseOptions,
): Promise<RehearsalRun> {
  const source = knexFactory({
    client: 'pg',
    // Every transaction of this connection is READ ONLY, whatever the role may do: the source is never written.
    connection: {
      connectionString: sourceUrl,
      connectionTimeoutMillis: 10_000,
      application_name: 'phaseflag-rehearse',
      options: '-c default_transaction_read_only=on',
    },
    pool: { min: 0, max: 2 },
    log: knexLog(out),
  });
  const local = await importLocal({
    message: 'rehearse builds its copy in an embedded PostgreSQL, and',
    hint: 'Install it (nothing else to set up: it ships the PostgreSQL binaries): ',
  });
  let server: Awaited<ReturnType<typeof local.startPostgres>> | undefined;
  let target: Knex | undefined;
  let pf: Phaseflag | undefined;
  let traffic: SyntheticTraffic | undefined;
  try {
    // A table declared without a schema is in the source connection's current schema, as the engine resolves it.
    const schema = migration.table.schema ?? ((await source.raw('SELECT current_schema() AS s')).rows[0].s as string);
    const table: TableRef = { schema, name: migration.table.name };
    const { copy: planCopy, facts } = await sourceFacts(source, migration, table, o);
    out.debug(`rehearse: source ~${facts.rowsEstimate} rows; ${facts.rates}`);
    server = await local.startPostgres({ database: 'phaseflag_rehearse' });
    target = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 12 }, log: knexLog(out) });
    const copy = await copyTable({ source, target, table, sample: planCopy.sample, rows: planCopy.rows });
    const recorder = new SpanRecorder();
    pf = new Phaseflag({ knex: target, tracerProvider: recorder, actor: 'phaseflag-rehearse', pollIntervalMs: 200 });
    await pf.install();
    const handle = pf.migration(migration);
    const plan = await handle.plan({ dropOldColumn: o.dropOldColumn });
    const planned = new Map(
      plan.phases.flatMap((p) =>
        p.statements.map((s) => [s.sql.trim(), { step: s.step, description: s.description }] as const),
      ),
    );
    const preflight = await handle.preflight();
    const keys = await trafficKeys(target, table, migration.primaryKey, 10_000);
    traffic = new SyntheticTraffic({
      knex: target,
      table,
      keyColumns: migration.primaryKey,
      keys,
      readsPerS: facts.readsPerS,
      writesPerS: facts.writesPerS,
    });
    traffic.start();
    const windows: Window[] = [];
    const hold = async (name: Window['name'], step: () => Promise<void>) => {
      const startMs = Date.now();
      await step();
      const stepEndMs = Date.now();
      const rest = o.phaseMinMs - (stepEndMs - startMs);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      windows.push({ name, startMs, endMs: Date.now(), stepEndMs });
    };
    await hold('baseline', async () => new Promise((r) => setTimeout(r, o.baselineMs)));
    let backfill: RehearsalRun['backfill'] = null;
    let stoppedBy: string | null = null;
    const steps: Record<RehearsePhase, () => Promise<void>> = {
      expand: async () => void (await handle.expand()),
      'dual-write': async () => void (await handle.startDualWrite()),
      backfill: async () => {
        const r = await handle.backfill();
        backfill = { rows: r.rowsScanned, updated: r.rowsUpdated, durationMs: r.durationMs };
      },
      verify: async () => void (await handle.verify()),
      'read-new': async () => void (await handle.readNew()),
      contract: async () => void (await handle.contract({ confirm: true, dropOldColumn: o.dropOldColumn })),
    };
    for (const phase of PHASES) {
      if (phase === 'dual-write' && preflight.failures > 0) {
        stoppedBy = `the preflight found ${preflight.failures} row(s) the backfill expression cannot derive: dual-write would be refused (PF_PREFLIGHT_FAILED)`;
        break;
      }
      try {
        await hold(phase, steps[phase]);
      } catch (error) {
        const e = error as { code?: string; message: string };
        stoppedBy = `${phase} failed: ${e.code ? `${e.code}: ` : ''}${e.message}`;
        break;
      }
      out.debug(`rehearse: ${phase} done`);
    }
    await traffic.stop();
    return {
      migration,
      table,
      source: facts,
      copy,
      preflight,
      windows,
      samples: traffic.samples,
      recorder,
      backfill,
      planned,
      stoppedBy,
    };
  } finally {
    await traffic?.stop().catch(() => undefined);
    await pf?.close().catch(() => undefined);
    await target?.destroy().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await source.destroy().catch(() => undefined);
  }
}

/** The source's size and activity (read only), and the sample and row count the copy will have. */
async function sourceFacts(
  source: Knex,
  migration: Migration,
  table: TableRef,
  o: RehearseOptions,
): Promise<{ facts: SourceFacts; copy: { sample: number; rows: number } }> {
  const { rows } = await source.raw(
    `SELECT greatest(c.reltuples, 0)::float8 AS estimate, pg_total_relation_size(c.oid)::float8 AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?`,
    [table.schema, table.name],
  );
  const rel = rows[0] as { estimate: number; bytes: number } | undefined;
  if (!rel) {
    const name = `${table.schema}.${table.name}`;
    throw new CatalogError(
      'PF_UNKNOWN_TABLE',
      `The source database has no table ${name} (migration "${migration.id}").`,
      {
        value: name,
        migrationId: migration.id,
        hint: "Check --database-url (the source to copy from) and the migration's table; the role needs USAGE on the schema.",
      },
    );
  }
  const estimate = Math.round(rel.estimate);
  const bytes = rel.bytes;
  let rowsChosen: string;
  let copyRows: number;
  if (o.rows !== undefined) {
    copyRows = o.rows;
    rowsChosen = `--rows ${o.rows}`;
  } else {
    // Room for the copy three times over (the new column, its index, WAL) in a quarter of the free space.
    const perRow = estimate > 0 ? Math.max(1, bytes / estimate) : 200;
    const free = statfsSync(tmpdir());
    const byDisk = Math.floor((free.bavail * free.bsize) / 4 / (perRow * 3));
    const cap = Math.min(o.maxRows ?? DEFAULT_MAX_ROWS, byDisk);
    copyRows = Math.max(1, Math.min(estimate, cap));
    rowsChosen =
      estimate <= cap
        ? `the source's estimate (${estimate})`
        : `capped at ${cap} (the smaller of --max-rows ${o.maxRows ?? DEFAULT_MAX_ROWS} and what a quarter of the free disk in ${tmpdir()} holds at ${Math.round(perRow)} bytes/row × 3)`;
  }
  const sample = Math.min(o.sample ?? 10_000, copyRows);
  let readsPerS: number;
  let writesPerS: number;
  let rates: string;
  if (o.readsPerS !== undefined && o.writesPerS !== undefined) {
    ({ readsPerS, writesPerS } = o as { readsPerS: number; writesPerS: number });
    rates = 'given (--reads-per-s, --writes-per-s)';
  } else {
    const seen = await sampleTableActivity(source, table, o.statsWindowMs);
    const cap = (n: number) => Math.min(MAX_OBSERVED_RATE, Math.round(n * 10) / 10);
    readsPerS = o.readsPerS ?? cap(seen.readsPerS);
    writesPerS = o.writesPerS ?? cap(seen.writesPerS);
    rates = `pg_stat_user_tables over ${o.statsWindowMs / 1000} s on the source: ${seen.readsPerS.toFixed(1)} scans/s, ${seen.writesPerS.toFixed(1)} rows written/s (each capped at ${MAX_OBSERVED_RATE}/s${o.readsPerS !== undefined || o.writesPerS !== undefined ? '; one rate given' : ''})`;
    if (readsPerS === 0 && writesPerS === 0) {
      readsPerS = 10;
      writesPerS = 2;
      rates += '; the table was idle, so a floor of 10 reads/s and 2 writes/s is used';
    }
  }
  return {
    facts: { rowsEstimate: estimate, totalBytes: bytes, readsPerS, writesPerS, rates, rowsChosen },
    copy: { sample, rows: Math.max(copyRows, sample) },
  };
}
