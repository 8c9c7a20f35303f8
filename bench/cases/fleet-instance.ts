/**
 * One in-process service instance of case 9's fleet: a knex pool of its own (its application_name names it in
 * pg_stat_activity), a Phaseflag of its own (so its own watcher: one LISTEN connection and one poll), and a router
 * on the migration with the default heartbeat. A watch callback on the same watcher records when the instance
 * first saw each version, which is the moment its router applies it (both listeners are called in one emit).
 */
import { StaticFlagSource, type Migration } from '@phaseflag/core';
import { Phaseflag, type KnexRouter } from '@phaseflag/postgres';
import knexFactory, { type Knex } from 'knex';

/**
 * The pool each instance gets: knex's default max, with min 0 as knex's documentation recommends (knex's own
 * default min of 2 would hold two idle connections per instance whatever phaseflag does). tarn's default
 * idleTimeoutMillis, 30 s, gives back a connection left idle that long.
 */
export const INSTANCE_POOL = { min: 0, max: 10 } as const;

export interface FleetInstance {
  /** Its application_name. */
  readonly name: string;
  readonly router: KnexRouter;
  /** Queries its pool has sent so far (knex's 'query' event; the watcher's one LISTEN is not among them). */
  queries(): number;
  /** When (performance.now()) it first saw `version` or a later one; null when it has not yet. */
  appliedAt(version: number): number | null;
  close(): Promise<void>;
}

export async function startInstance(
  url: string,
  name: string,
  migration: Migration,
  stateSchema: string,
  applicationName = name,
): Promise<FleetInstance> {
  const knex: Knex = knexFactory({
    client: 'pg',
    connection: { connectionString: url, application_name: applicationName },
    pool: { ...INSTANCE_POOL },
  });
  let queries = 0;
  knex.on('query', () => {
    queries++;
  });
  // Default pollIntervalMs (1 s) and, on the router, the default heartbeat (5 s).
  const pf = new Phaseflag({ knex, stateSchema });
  const seen: { version: number; atMs: number }[] = [];
  const handle = pf.migration(migration);
  const unwatch = handle.watch((s) => seen.push({ version: s.version, atMs: performance.now() }));
  try {
    // The read-new flag is on for every request: once the phase is read-new, heartbeats report no old reads
    // and contract may go ahead.
    const router = await handle.router(new StaticFlagSource({ [`${migration.id}.read-new`]: true }));
    return {
      name,
      router,
      queries: () => queries,
      appliedAt: (version) => seen.find((s) => s.version >= version)?.atMs ?? null,
      close: async () => {
        unwatch();
        await pf.close();
        await knex.destroy();
      },
    };
  } catch (error) {
    unwatch();
    await pf.close().catch(() => undefined);
    await knex.destroy();
    throw error;
  }
}
