import type { TrafficSample } from '@phaseflag/postgres/internal';
import type { RehearseOptions } from './options.js';
import type { RehearsalRun } from './run.js';

export interface Latency {
  readonly requests: number;
  readonly errors: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** This window's p99 over the baseline's (null for the baseline itself, or without samples). */
  readonly p99Ratio: number | null;
  /** The first error message seen, if any. */
  readonly firstError: string | null;
}

export interface StatementReport {
  readonly step: string | null;
  readonly description: string | null;
  readonly sql: string;
  readonly lock: string;
  /** Waiting for the lock: attempts that hit lock_timeout plus the LOCK TABLE of the one that got it (the span's phaseflag.lock.wait_ms). */
  readonly lockWaitMs: number;
  /** From the lock granted to commit: the span's duration less the wait (for CONCURRENTLY, the build under its SHARE UPDATE EXCLUSIVE). */
  readonly heldMs: number;
  readonly attempts: number;
  /** Whether the lock stops the application's writes (SHARE and stronger) while held. */
  readonly blocksWrites: boolean;
}

export interface PhaseReport {
  readonly phase: string;
  readonly durationMs: number;
  readonly statements: readonly StatementReport[];
  readonly latency: Latency;
}

export interface Threshold {
  readonly name: '--max-lock-ms' | '--max-backfill' | '--max-p99-ratio';
  readonly limit: number;
  readonly value: number | null;
  readonly crossed: boolean;
  readonly unit: string;
}

export interface RehearsalReport {
  readonly migrationId: string;
  readonly table: string;
  readonly source: RehearsalRun['source'];
  readonly copy: {
    readonly method: string;
    readonly sampledRows: number;
    readonly rows: number;
    readonly scaleNote: string | null;
    readonly parents: readonly { table: string; constraint: string; rows: number }[];
    readonly statements: readonly { what: string; sql: string }[];
    readonly skipped: readonly { what: string; why: string }[];
    readonly durationMs: number;
  };
  readonly preflight: {
    rowsChecked: number;
    failures: number;
    roundTripMismatches: number | null;
    failedRows: unknown[];
  };
  readonly traffic: { readsPerS: number; writesPerS: number };
  readonly baseline: Latency;
  readonly phases: readonly PhaseReport[];
  readonly backfill: { rows: number; updated: number; durationMs: number; rowsPerS: number } | null;
  readonly projection: {
    readonly sourceRows: number;
    readonly seconds: number;
    readonly method: string;
    readonly assumptions: readonly string[];
  } | null;
  readonly stoppedBy: string | null;
  readonly thresholds: readonly Threshold[];
  readonly ok: boolean;
}

const BLOCKS_WRITES = new Set(['SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE']);

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function latency(samples: readonly TrafficSample[], baselineP99: number | null): Latency {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const p99 = percentile(ms, 99);
  const errors = samples.filter((s) => s.error !== null);
  return {
    requests: samples.length,
    errors: errors.length,
    p50Ms: percentile(ms, 50),
    p99Ms: p99,
    // A baseline p99 under 1 ms would turn scheduler noise into large ratios: 1 ms is the floor.
    p99Ratio: baselineP99 === null || p99 === null ? null : round(p99 / Math.max(1, baselineP99), 2),
    firstError: errors[0]?.error ?? null,
  };
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

export function buildReport(run: RehearsalRun, o: RehearseOptions): RehearsalReport {
  const inWindow = (w: { startMs: number; endMs: number }) =>
    run.samples.filter((s) => s.at >= w.startMs && s.at < w.endMs);
  const baselineWindow = run.windows.find((w) => w.name === 'baseline');
  const baseline = latency(baselineWindow ? inWindow(baselineWindow) : [], null);
  const ddl = run.recorder.spans.filter((s) => s.name === 'phaseflag.ddl');
  const phases: PhaseReport[] = run.windows
    .filter((w) => w.name !== 'baseline')
    .map((w) => ({
      phase: w.name,
      durationMs: w.stepEndMs - w.startMs,
      statements: ddl
        .filter((s) => s.startMs >= w.startMs && s.startMs <= w.stepEndMs)
        .map((s) => {
          const sql = String(s.attributes['db.statement'] ?? '').trim();
          const lock = String(s.attributes['phaseflag.lock.mode'] ?? 'NONE');
          const wait = Number(s.attributes['phaseflag.lock.wait_ms'] ?? 0);
          const planned = run.planned.get(sql);
          return {
            step: planned?.step ?? null,
            description: planned?.description ?? null,
            sql,
            lock,
            lockWaitMs: wait,
            heldMs: Math.max(0, (s.endMs ?? s.startMs) - s.startMs - wait),
            attempts: Number(s.attributes['phaseflag.retry.attempts'] ?? 1),
            blocksWrites: BLOCKS_WRITES.has(lock),
          };
        }),
      latency: latency(inWindow(w), baseline.p99Ms),
    }));
  const b = run.backfill;
  const backfill = b ? { ...b, rowsPerS: Math.round(b.rows / Math.max(0.001, b.durationMs / 1000)) } : null;
  const sourceRows = run.source.rowsEstimate;
  const projection =
    backfill && backfill.rowsPerS > 0
      ? {
          sourceRows,
          seconds: Math.round(sourceRows / backfill.rowsPerS),
          method: `linear in rows: ${sourceRows} source rows (pg_class.reltuples) ÷ ${backfill.rowsPerS} rows/s measured over the ${backfill.rows} rows of the copy`,
          assumptions: [
            'every batch costs the same: keyset batches of a fixed size on the primary key, so the time grows with the row count',
            'the source runs the backfill as fast as this machine did (same batch settings, no throttle or replica lag waits beyond those measured here); a faster or busier server scales it by its own speed',
            `the traffic during the backfill is as rehearsed (${run.source.readsPerS} reads/s, ${run.source.writesPerS} writes/s)`,
            ...(run.copy.rows < 10_000
              ? ['the copy is small (under 10,000 rows): per-run fixed costs weigh more than they will at full size']
              : []),
          ],
        }
      : null;
  const lockValues = phases.flatMap((p) =>
    p.statements.filter((s) => s.blocksWrites).map((s) => s.lockWaitMs + s.heldMs),
  );
  const ratios = phases.map((p) => p.latency.p99Ratio).filter((r): r is number => r !== null);
  const thresholds: Threshold[] = [];
  if (o.maxLockMs !== undefined) {
    const value = lockValues.length ? Math.max(...lockValues) : 0;
    thresholds.push({ name: '--max-lock-ms', limit: o.maxLockMs, value, crossed: value > o.maxLockMs, unit: 'ms' });
  }
  if (o.maxBackfillS !== undefined) {
    const value = projection?.seconds ?? null;
    thresholds.push({
      name: '--max-backfill',
      limit: o.maxBackfillS,
      value,
      crossed: value === null || value > o.maxBackfillS,
      unit: 's',
    });
  }
  if (o.maxP99Ratio !== undefined) {
    const value = ratios.length ? Math.max(...ratios) : null;
    thresholds.push({
      name: '--max-p99-ratio',
      limit: o.maxP99Ratio,
      value,
      crossed: value === null || value > o.maxP99Ratio,
      unit: '×',
    });
  }
  const t = run.table;
  return {
    migrationId: run.migration.id,
    table: `${t.schema}.${t.name}`,
    source: run.source,
    copy: {
      method: run.copy.method,
      sampledRows: run.copy.sampledRows,
      rows: run.copy.rows,
      scaleNote: run.copy.scaleNote,
      parents: run.copy.parents.map((p) => ({
        table: `${p.table.schema}.${p.table.name}`,
        constraint: p.constraint,
        rows: p.rows,
      })),
      statements: run.copy.statements.map((s) => ({ what: s.what, sql: s.sql })),
      skipped: run.copy.skipped,
      durationMs: run.copy.durationMs,
    },
    preflight: {
      rowsChecked: run.preflight.rowsChecked,
      failures: run.preflight.failures,
      roundTripMismatches: run.preflight.roundTripMismatches,
      failedRows: [...run.preflight.failedRows],
    },
    traffic: { readsPerS: run.source.readsPerS, writesPerS: run.source.writesPerS },
    baseline,
    phases,
    backfill,
    projection,
    stoppedBy: run.stoppedBy,
    thresholds,
    ok: run.stoppedBy === null && thresholds.every((x) => !x.crossed),
  };
}
