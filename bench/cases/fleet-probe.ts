/**
 * What case 9 reads from Postgres and PgBouncer while the fleet runs: the fleet's connections (pg_stat_activity,
 * every client backend but the operator's and the probe's own, sampled on a timer and tagged with the stage of
 * the run), PgBouncer's client and server counts (its admin console, SHOW POOLS), and the database's
 * transaction and WAL counters for the load the fleet costs.
 */
import type { Knex } from 'knex';
import pg from 'pg';
import { median } from '../lib/stats.js';

export const OPERATOR_APP = 'pfb-fleet-operator';
export const PROBE_APP = 'pfb-fleet-probe';

export type FleetStage = 'baseline' | 'starting' | 'idle' | 'migration' | 'closed';

export interface StageConnections {
  samples: number;
  /** Postgres connections of the fleet (client backends but the operator's and the probe's). */
  medianTotal: number;
  peakTotal: number;
  /** By application_name, i.e. per instance when the instances connect directly; null through PgBouncer. */
  medianPerInstance: number | null;
  peakPerInstance: number | null;
  /** PgBouncer's client connections (cl_active + cl_waiting + cl_idle), when there is a PgBouncer. */
  peakPoolerClients: number | null;
  /** Postgres connections the operator held (its pool and its watcher's LISTEN). */
  peakOperator: number;
}

interface Sample {
  stage: FleetStage;
  total: number;
  perInstanceMax: number;
  perInstanceMedian: number;
  operator: number;
  poolerClients: number | null;
}

export interface ConnectionSampler {
  stage: FleetStage;
  /** Queries the sampler itself sent to Postgres (one transaction each), for the load's arithmetic. */
  readonly queries: number;
  stop(): Promise<Partial<Record<FleetStage, StageConnections>>>;
}

export function sampleConnections(
  probe: Knex,
  options: { everyMs: number; instances: readonly string[]; poolerAdminUrl?: string },
): ConnectionSampler {
  const samples: Sample[] = [];
  const names = new Set(options.instances);
  const admin = options.poolerAdminUrl ? new pg.Client(options.poolerAdminUrl) : undefined;
  const adminReady = admin?.connect();
  let stopped = false;
  const sampler = {
    stage: 'baseline' as FleetStage,
    queries: 0,
    async stop() {
      stopped = true;
      await loop;
      await admin?.end().catch(() => undefined);
      return summarize(samples, options.poolerAdminUrl !== undefined, names.size > 0);
    },
  };
  const once = async () => {
    const stage = sampler.stage;
    sampler.queries++;
    const rows = (
      await probe.raw(
        `SELECT coalesce(application_name, '') AS app, count(*)::int AS n FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND datname = current_database() AND application_name <> ?
          GROUP BY 1`,
        [PROBE_APP],
      )
    ).rows as { app: string; n: number }[];
    const operator = rows.filter((r) => r.app === OPERATOR_APP).reduce((a, r) => a + r.n, 0);
    const fleet = rows.filter((r) => r.app !== OPERATOR_APP);
    const perInstance = options.poolerAdminUrl ? [] : fleet.filter((r) => names.has(r.app)).map((r) => r.n);
    let poolerClients: number | null = null;
    if (admin) {
      await adminReady;
      // The admin console speaks the simple protocol only: a query without parameters is sent that way.
      const pools = (await admin.query('SHOW POOLS')).rows as Record<string, string>[];
      poolerClients = pools
        .filter((p) => p.database !== 'pgbouncer')
        .reduce((a, p) => a + Number(p.cl_active ?? 0) + Number(p.cl_waiting ?? 0) + Number(p.cl_idle ?? 0), 0);
    }
    samples.push({
      stage,
      total: fleet.reduce((a, r) => a + r.n, 0),
      perInstanceMax: perInstance.length ? Math.max(...perInstance) : 0,
      perInstanceMedian: perInstance.length ? median(perInstance) : 0,
      operator,
      poolerClients,
    });
  };
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      await once();
      await new Promise((r) => setTimeout(r, Math.max(0, options.everyMs - (performance.now() - started))));
    }
  })();
  return sampler;
}

function summarize(
  samples: readonly Sample[],
  pooled: boolean,
  named: boolean,
): Partial<Record<FleetStage, StageConnections>> {
  const out: Partial<Record<FleetStage, StageConnections>> = {};
  for (const stage of ['baseline', 'starting', 'idle', 'migration', 'closed'] as const) {
    const s = samples.filter((x) => x.stage === stage);
    if (s.length === 0) continue;
    const perInstance = !pooled && named && stage !== 'baseline';
    out[stage] = {
      samples: s.length,
      medianTotal: median(s.map((x) => x.total)),
      peakTotal: Math.max(...s.map((x) => x.total)),
      medianPerInstance: perInstance ? median(s.map((x) => x.perInstanceMedian)) : null,
      peakPerInstance: perInstance ? Math.max(...s.map((x) => x.perInstanceMax)) : null,
      peakPoolerClients: pooled ? Math.max(...s.map((x) => x.poolerClients ?? 0)) : null,
      peakOperator: Math.max(...s.map((x) => x.operator)),
    };
  }
  return out;
}

/**
 * The database's transactions/s and WAL bytes/s over `ms`, and the queries/s `sent()` counts meanwhile. Backends
 * flush their transaction counts to pg_stat_database about once a second, so a window of many seconds is exact to
 * a few percent.
 */
export async function loadWindow(probe: Knex, sent: () => number, ms: number) {
  const q0 = sent();
  const c0 = await databaseCounters(probe);
  await new Promise((r) => setTimeout(r, ms));
  const c1 = await databaseCounters(probe);
  const q1 = sent();
  const seconds = (c1.atMs - c0.atMs) / 1000;
  return {
    seconds,
    xactsPerSecond: (c1.xacts - c0.xacts) / seconds,
    queriesPerSecond: (q1 - q0) / seconds,
    walPerSecond: (await walBytesBetween(probe, c0.walLsn, c1.walLsn)) / seconds,
  };
}

/** The database's commit + rollback count and the WAL position: read at both ends of a window. */
async function databaseCounters(probe: Knex): Promise<{ xacts: number; walLsn: string; atMs: number }> {
  const row = (
    await probe.raw(
      `SELECT (xact_commit + xact_rollback)::bigint AS x, pg_current_wal_lsn()::text AS lsn
         FROM pg_stat_database WHERE datname = current_database()`,
    )
  ).rows[0] as { x: string; lsn: string };
  return { xacts: Number(row.x), walLsn: row.lsn, atMs: performance.now() };
}

async function walBytesBetween(probe: Knex, from: string, to: string): Promise<number> {
  const row = (await probe.raw('SELECT pg_wal_lsn_diff(?::pg_lsn, ?::pg_lsn)::bigint AS b', [to, from])).rows[0] as {
    b: string;
  };
  return Number(row.b);
}
