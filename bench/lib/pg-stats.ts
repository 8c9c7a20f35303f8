import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';

export interface RelationSizes {
  /** pg_total_relation_size: heap, TOAST, every index. */
  total: number;
  /** pg_relation_size: the heap alone. */
  heap: number;
  indexes: number;
}

export async function relationSizes(knex: Knex, schema: string, table = 'orders'): Promise<RelationSizes> {
  const row = (
    await knex.raw(
      `SELECT pg_total_relation_size(c.oid)::float8 AS total, pg_relation_size(c.oid)::float8 AS heap, pg_indexes_size(c.oid)::float8 AS indexes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?`,
      [schema, table],
    )
  ).rows[0] as RelationSizes;
  return row;
}

export interface TableActivity {
  nLiveTup: number;
  nDeadTup: number;
  nTupHotUpd: number;
  nTupUpd: number;
  lastVacuum: string | null;
  lastAutovacuum: string | null;
  vacuumCount: number;
  autovacuumCount: number;
}

/**
 * pg_stat_user_tables after a run. A backend sends its counters at most once a second while it lives (PG 15's
 * pgstat) and always when it exits; the runs close their connections before this is read.
 */
export async function tableActivity(knex: Knex, schema: string, table = 'orders'): Promise<TableActivity> {
  // Every writer of the run has closed its connections by now, and a backend sends its counters when it exits.
  await sleep(250);
  return knex.transaction(async (trx) => {
    await trx.raw('SELECT pg_stat_clear_snapshot()');
    const row = (
      await trx.raw(
        `SELECT n_live_tup::float8 AS "nLiveTup", n_dead_tup::float8 AS "nDeadTup", n_tup_hot_upd::float8 AS "nTupHotUpd",
              n_tup_upd::float8 AS "nTupUpd", last_vacuum::text AS "lastVacuum", last_autovacuum::text AS "lastAutovacuum",
              vacuum_count::int AS "vacuumCount", autovacuum_count::int AS "autovacuumCount"
         FROM pg_stat_user_tables WHERE schemaname = ? AND relname = ?`,
        [schema, table],
      )
    ).rows[0] as TableActivity;
    return row;
  });
}

/** VACUUMs of the table so far (manual and auto); VACUUM reports its count to the shared stats at once. */
export async function vacuumCount(knex: Knex, schema: string, table = 'orders'): Promise<number> {
  return knex.transaction(async (trx) => {
    await trx.raw('SELECT pg_stat_clear_snapshot()');
    const row = (
      await trx.raw(
        'SELECT (vacuum_count + autovacuum_count)::int AS n FROM pg_stat_user_tables WHERE schemaname = ? AND relname = ?',
        [schema, table],
      )
    ).rows[0] as { n: number } | undefined;
    return row?.n ?? 0;
  });
}

export interface WalCounters {
  lsn: string;
  records: number;
  fpi: number;
  bytes: number;
}

/** The server's WAL position and pg_stat_wal counters (both cluster-wide: other sessions' WAL is included). */
export async function walCounters(knex: Knex): Promise<WalCounters> {
  const row = (
    await knex.raw(
      `SELECT pg_current_wal_lsn()::text AS lsn, wal_records::float8 AS records, wal_fpi::float8 AS fpi, wal_bytes::float8 AS bytes FROM pg_stat_wal`,
    )
  ).rows[0] as WalCounters;
  return row;
}

export interface WalDelta {
  /** pg_current_wal_lsn() difference. */
  lsnBytes: number;
  records: number;
  fpi: number;
}

export async function walDelta(knex: Knex, before: WalCounters): Promise<WalDelta> {
  const after = await walCounters(knex);
  const lsnBytes = Number(
    (await knex.raw('SELECT (?::pg_lsn - ?::pg_lsn)::float8 AS d', [after.lsn, before.lsn])).rows[0].d,
  );
  return { lsnBytes, records: after.records - before.records, fpi: after.fpi - before.fpi };
}

/** A checkpoint before each measured run, so every run starts with the same full-page-image debt. */
export async function checkpoint(knex: Knex): Promise<boolean> {
  try {
    await knex.raw('CHECKPOINT');
    return true;
  } catch {
    return false;
  }
}

export interface WaitProfile {
  samples: number;
  /** "CPU" for an active backend with no wait event; else "Type:Event". Fractions of samples. */
  events: Record<string, number>;
}

/**
 * Samples pg_stat_activity every `everyMs` for the backends whose application_name starts with `prefix` and are
 * running a statement, and tallies what they wait on: the cheapest profile of where a run's time goes when
 * pg_stat_statements is not loaded.
 */
export function sampleWaits(knex: Knex, prefix: string, everyMs = 50): { stop(): Promise<WaitProfile> } {
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const rows = (
          await knex.raw(
            `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS ev FROM pg_stat_activity
            WHERE application_name LIKE ? AND state = 'active' AND pid <> pg_backend_pid()`,
            [`${prefix}%`],
          )
        ).rows as { ev: string }[];
        for (const r of rows) {
          counts.set(r.ev, (counts.get(r.ev) ?? 0) + 1);
          samples++;
        }
      } catch {
        // a sample lost to a busy server changes nothing
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const events: Record<string, number> = {};
      for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) events[k] = samples ? v / samples : 0;
      return { samples, events };
    },
  };
}

export function formatWaits(p: WaitProfile, top = 4): string {
  if (p.samples === 0) return 'no samples';
  return Object.entries(p.events)
    .slice(0, top)
    .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`)
    .join(', ');
}

export interface LockWaitReport {
  /** Longest time one application statement was seen waiting on a heavyweight lock (ms, sampling resolution). */
  longestMs: number;
  /** Statements seen waiting at least once. */
  statementsWaiting: number;
  /** What they waited for, e.g. "transactionid", "relation". */
  lockTypes: string[];
}

/**
 * Watches application backends (application_name starting with `prefix`) for heavyweight lock waits. A statement
 * is one (pid, query_start). Its wait is bounded from above: it began after the previous sample (and after the
 * statement started) and ended before the first sample that no longer sees it, so the figure errs long by at
 * most one sampling interval, never short.
 */
export function watchLockWaits(knex: Knex, prefix: string, everyMs = 10): { stop(): Promise<LockWaitReport> } {
  const open = new Map<string, number>();
  const durations: number[] = [];
  const types = new Set<string>();
  let running = true;
  let previous = performance.now();
  const loop = (async () => {
    while (running) {
      try {
        const rows = (
          await knex.raw(
            `SELECT pid, query_start::text AS qs, wait_event AS ev,
                  extract(epoch from clock_timestamp() - query_start) * 1000 AS running_ms
             FROM pg_stat_activity
            WHERE application_name LIKE ? AND wait_event_type = 'Lock' AND state = 'active'`,
            [`${prefix}%`],
          )
        ).rows as { pid: number; qs: string; ev: string; running_ms: number }[];
        const now = performance.now();
        const seen = new Set<string>();
        for (const r of rows) {
          types.add(r.ev);
          const key = `${r.pid}/${r.qs}`;
          seen.add(key);
          if (!open.has(key)) open.set(key, Math.max(previous, now - Number(r.running_ms)));
        }
        for (const [key, start] of open) {
          if (seen.has(key)) continue;
          durations.push(now - start);
          open.delete(key);
        }
        previous = now;
      } catch {
        // a lost sample only widens the bound of the waits in flight
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const now = performance.now();
      for (const start of open.values()) durations.push(now - start);
      open.clear();
      return {
        longestMs: durations.length ? Math.max(...durations) : 0,
        statementsWaiting: durations.length,
        lockTypes: [...types],
      };
    },
  };
}
