/**
 * Case 9: a fleet. N in-process service instances (each its own knex pool, Phaseflag and router: fleet-instance.ts)
 * on a private Postgres server of the case's own, while an operator (its own Phaseflag and knex, always direct)
 * moves one migration through every phase. Per variant, direct and through PgBouncer in transaction mode: the
 * fleet's Postgres connections, the load it costs the database while it idles (heartbeats and polls), and for
 * each transition the time from its commit until every instance applies it (fleet-walk.ts). A third variant,
 * through PgBouncer with an application_name per instance and no migration, shows what distinct names cost there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineMigration } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import knexFactory, { type Knex } from 'knex';
import type { BenchContext } from '../lib/context.js';
import { median } from '../lib/stats.js';
import { INSTANCE_POOL, startInstance, type FleetInstance } from './fleet-instance.js';
import { walkPhases, type FleetTransition, type HeardCommit } from './fleet-walk.js';
import {
  loadWindow,
  OPERATOR_APP,
  PROBE_APP,
  sampleConnections,
  type FleetStage,
  type StageConnections,
} from './fleet-probe.js';

export type FleetModeName = 'direct' | 'pgbouncer';
export type { FleetTransition } from './fleet-walk.js';

export interface FleetOptions {
  instances: number;
  rows: number;
  /** The private server's max_connections. */
  maxConnections: number;
  /** PgBouncer's default_pool_size in the pooled mode. */
  poolerPoolSize: number;
  baselineMs: number;
  /** After the fleet has started and before the idle window: longer than the pool's 30 s idle timeout. */
  settleMs: number;
  idleMs: number;
  sampleEveryMs: number;
  /** Also run the idle contrast through PgBouncer with a name per instance (the quick run leaves it out). */
  contrast: boolean;
}

export interface FleetLoad {
  windowSeconds: number;
  /** The database with the operator and the probe but no fleet, then with the idle fleet: transactions/s. */
  baselineXactsPerSecond: number;
  idleXactsPerSecond: number;
  /** idle − baseline: what the fleet costs, in all and per instance. */
  fleetXactsPerSecond: number;
  perInstanceXactsPerSecond: number;
  /** The same from the client side: queries the instances' pools sent (knex 'query' events). */
  clientQueriesPerSecond: number;
  perInstanceQueriesPerSecond: number;
  baselineWalBytesPerSecond: number;
  idleWalBytesPerSecond: number;
}

/** How the instances name themselves: each its own application_name, or one for all (replicas of one service). */
export type FleetNames = 'per-instance' | 'shared';

export interface FleetVariant {
  mode: FleetModeName;
  names: FleetNames;
  /** false: the fleet idles and closes, nothing is migrated. */
  migrate: boolean;
  settleMs: number;
}

export interface FleetMode {
  mode: FleetModeName;
  names: FleetNames;
  migrated: boolean;
  measured: boolean;
  reason?: string;
  instances: number;
  poolerPoolSize?: number;
  startSeconds?: number;
  connections: Partial<Record<FleetStage, StageConnections>>;
  load?: FleetLoad;
  transitions: FleetTransition[];
  medianAllMs?: number;
  maxAllMs?: number;
}

export interface FleetCase {
  measured: boolean;
  reason?: string;
  options: FleetOptions;
  postgresVersion?: string;
  pollIntervalMs: number;
  heartbeatMs: number;
  instancePool: typeof INSTANCE_POOL;
  modes: FleetMode[];
}

const STATE_SCHEMA = 'phaseflag';
/** The engine's defaults, which the instances keep: they bound propagation without LISTEN and the load. */
const POLL_INTERVAL_MS = 1000;
const HEARTBEAT_MS = 5000;

export async function runFleet(ctx: BenchContext, options: FleetOptions): Promise<FleetCase> {
  const base: FleetCase = {
    measured: false,
    options,
    pollIntervalMs: POLL_INTERVAL_MS,
    heartbeatMs: HEARTBEAT_MS,
    instancePool: INSTANCE_POOL,
    modes: [],
  };
  const testkit = await import('@phaseflag/testkit');
  const unavailable = testkit.privateServerUnavailable();
  if (unavailable) return { ...base, reason: `no private server: ${unavailable}` };
  const server = await testkit.startPrivateServer({ maxConnections: options.maxConnections });
  try {
    const variants: FleetVariant[] = [
      { mode: 'direct', names: 'per-instance', migrate: true, settleMs: options.settleMs },
      // Replicas of one service share a name; PgBouncer sets a client's name on the server connection it lends.
      { mode: 'pgbouncer', names: 'shared', migrate: true, settleMs: options.settleMs },
      ...(options.contrast
        ? [
            {
              mode: 'pgbouncer',
              names: 'per-instance',
              migrate: false,
              settleMs: Math.min(options.settleMs, 5000),
            } as const,
          ]
        : []),
    ];
    for (const v of variants) {
      const noPooler = v.mode === 'pgbouncer' ? testkit.pgbouncerUnavailable() : undefined;
      if (noPooler) {
        base.modes.push({
          mode: v.mode,
          names: v.names,
          migrated: false,
          measured: false,
          reason: noPooler,
          instances: options.instances,
          connections: {},
          transitions: [],
        });
        continue;
      }
      ctx.log(`  fleet: ${options.instances} instances, ${v.mode}, ${v.names} application_name`);
      base.modes.push(
        await runMode(ctx, v, base.modes.length, options, server.url, async (target, poolSize) => {
          const b = await testkit.startPgBouncer({ target, poolSize });
          return { url: b.url, adminUrl: b.urlFor('pgbouncer'), stop: () => b.stop() };
        }),
      );
    }
    const probe = pool(server.url, PROBE_APP, 1);
    base.postgresVersion = (
      (await probe.raw('SHOW server_version')).rows[0] as { server_version: string }
    ).server_version;
    await probe.destroy();
    return { ...base, measured: base.modes.some((m) => m.measured) };
  } finally {
    await server.stop();
  }
}

type Pooler = { url: string; adminUrl: string; stop(): Promise<void> };

async function runMode(
  ctx: BenchContext,
  v: FleetVariant,
  seq: number,
  o: FleetOptions,
  serverUrl: string,
  startPooler: (target: string, poolSize: number) => Promise<Pooler>,
): Promise<FleetMode> {
  const { mode } = v;
  const result: FleetMode = {
    mode,
    names: v.names,
    migrated: false,
    measured: false,
    instances: o.instances,
    connections: {},
    transitions: [],
  };
  const operatorKnex = pool(serverUrl, OPERATOR_APP, 4);
  const probe = pool(serverUrl, PROBE_APP, 1);
  // No grace before contract's drops (as the bench's own engine): it keeps the old column, and the phase change
  // that is timed commits before the grace anyway.
  const operator = new Phaseflag({ knex: operatorKnex, stateSchema: STATE_SCHEMA, graceMs: 0 });
  const fleet: FleetInstance[] = [];
  let pooler: Pooler | undefined;
  let sampler: ReturnType<typeof sampleConnections> | undefined;
  try {
    await operator.install();
    const table = `orders_${seq}_${mode}`;
    const testkit = await import('@phaseflag/testkit');
    await testkit.createAmountTable(operatorKnex, table, o.rows);
    const migration = defineMigration(testkit.amountInput(`fleet-${seq}-${mode}`, table));
    const m = operator.migration(migration);
    await m.register();
    // The commit clock: the operator's own watcher LISTENs on a direct connection, and a transition's NOTIFY
    // is delivered when it commits.
    const commits: HeardCommit[] = [];
    const unwatch = m.watch((s) => commits.push({ phase: s.phase, version: s.version, atMs: performance.now() }));
    if (mode === 'pgbouncer') {
      pooler = await startPooler(serverUrl, o.poolerPoolSize);
      result.poolerPoolSize = o.poolerPoolSize;
    }
    const names = Array.from({ length: o.instances }, (_, i) => `pfb-fleet-${String(i).padStart(2, '0')}`);
    sampler = sampleConnections(probe, {
      everyMs: o.sampleEveryMs,
      instances: names,
      ...(pooler ? { poolerAdminUrl: pooler.adminUrl } : {}),
    });
    const s = sampler;
    const sent = () => fleet.reduce((a, f) => a + f.queries(), 0);
    const window = (ms: number) => loadWindow(probe, sent, ms);
    await sleep(o.sampleEveryMs);
    const baseline = await window(o.baselineMs);

    s.stage = 'starting';
    const startedAt = performance.now();
    const url = pooler?.url ?? serverUrl;
    for (let i = 0; i < names.length; i += 10) {
      // Ten at a time: a deployment's instances start over a while, not in one instant.
      fleet.push(
        ...(await Promise.all(
          names
            .slice(i, i + 10)
            .map((n) => startInstance(url, n, migration, STATE_SCHEMA, v.names === 'shared' ? 'pfb-fleet' : n)),
        )),
      );
    }
    result.startSeconds = (performance.now() - startedAt) / 1000;
    await sleep(v.settleMs);

    s.stage = 'idle';
    const idle = await window(o.idleMs);
    const fleetXacts = idle.xactsPerSecond - baseline.xactsPerSecond;
    result.load = {
      windowSeconds: idle.seconds,
      baselineXactsPerSecond: baseline.xactsPerSecond,
      idleXactsPerSecond: idle.xactsPerSecond,
      fleetXactsPerSecond: fleetXacts,
      perInstanceXactsPerSecond: fleetXacts / o.instances,
      clientQueriesPerSecond: idle.queriesPerSecond,
      perInstanceQueriesPerSecond: idle.queriesPerSecond / o.instances,
      baselineWalBytesPerSecond: baseline.walPerSecond,
      idleWalBytesPerSecond: idle.walPerSecond,
    };

    if (v.migrate) {
      s.stage = 'migration';
      result.transitions = await walkPhases(m, fleet, commits, {
        pollIntervalMs: POLL_INTERVAL_MS,
        heartbeatMs: HEARTBEAT_MS,
      });
      const all = result.transitions.map((t) => t.allMs);
      result.medianAllMs = median(all);
      result.maxAllMs = Math.max(...all);
      result.migrated = true;
    }
    unwatch();
    await Promise.all(fleet.splice(0).map((f) => f.close()));
    s.stage = 'closed';
    await sleep(o.sampleEveryMs * 2);
    result.measured = true;
  } catch (error) {
    result.reason = `stopped early: ${(error as Error).message.split('\n')[0]}`;
    ctx.log(`  fleet ${mode}: ${(error as Error).stack ?? String(error)}`);
  } finally {
    await Promise.all(fleet.map((f) => f.close().catch(() => undefined)));
    if (sampler) result.connections = await sampler.stop().catch(() => ({}));
    await pooler?.stop();
    await operator.close().catch(() => undefined);
    await Promise.all([operatorKnex.destroy(), probe.destroy()]);
  }
  return result;
}

function pool(url: string, applicationName: string, max: number): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, application_name: applicationName },
    pool: { min: 0, max },
  });
}
