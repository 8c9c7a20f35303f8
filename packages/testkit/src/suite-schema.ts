import { randomBytes } from 'node:crypto';
import knex, { type Knex } from 'knex';
import { withSearchPath } from './database/connection-string.js';
import { resolveDatabase, type DatabaseKind } from './database/resolve-database.js';

export interface SuiteSchemaOptions {
  /** Pool of the suite's main `knex`. Default `{ min: 0, max: 10 }`. */
  pool?: Knex.PoolConfig;
}

export interface NewKnexOptions {
  /** Default `{ min: 0, max: 10 }`. */
  pool?: Knex.PoolConfig;
  /** Shown in `pg_stat_activity`; defaults to `phaseflag-test <schema>`. */
  applicationName?: string;
}

export interface Suite {
  /** Connections start with `search_path` set to `schema`, so unqualified tables land there. */
  knex: Knex;
  /** Created for this suite: `pf_<name>_<random>`. */
  schema: string;
  /** Reserved, not created: `pf_state_<random>`, for the code under test to install its state schema in. */
  stateSchema: string;
  /** Carries `options=-c search_path=<schema>`, so any client built from it shares the suite's schema. */
  connectionString: string;
  /** The database's own URL, without the search_path option. */
  databaseUrl: string;
  kind: DatabaseKind;
  /** Another pool with the same search_path (e.g. an "old" and a "new" application); destroyed by cleanup. */
  newKnex(options?: NewKnexOptions): Knex;
  /** Drops both schemas, destroys every pool, releases the database. Idempotent. */
  cleanup(): Promise<void>;
}

const MAX_IDENTIFIER = 63; // NAMEDATALEN - 1: longer names are silently truncated by Postgres.

/**
 * Gives a suite its own schema in the shared database. Engineers run suites concurrently against the same
 * local server, so names carry a random suffix rather than relying on a previous run's cleanup.
 */
export async function createSuiteSchema(name: string, options: SuiteSchemaOptions = {}): Promise<Suite> {
  const database = await resolveDatabase();
  const suffix = randomBytes(4).toString('hex');
  const schema = suiteSchemaName(name, suffix);
  const stateSchema = `pf_state_${suffix}`;
  const connectionString = withSearchPath(database.connectionString, schema);
  const extraPools = new Set<Knex>();

  const makeKnex = (pool: Knex.PoolConfig | undefined, applicationName: string | undefined): Knex =>
    knex({
      client: 'pg',
      connection: { connectionString, application_name: applicationName ?? `phaseflag-test ${schema}` },
      pool: { min: 0, max: 10, ...pool },
    });

  const main = makeKnex(options.pool, undefined);
  try {
    await main.raw('CREATE SCHEMA ??', [schema]);
  } catch (error) {
    await main.destroy();
    await database.release();
    throw error;
  }

  let cleanedUp: Promise<void> | undefined;
  const cleanup = async () => {
    // Extra pools go first: an idle-in-transaction connection there would block the DROP below.
    await Promise.all([...extraPools].map((pool) => pool.destroy()));
    extraPools.clear();
    try {
      // DROP SCHEMA takes ACCESS EXCLUSIVE on every table inside; a test that leaked an open transaction would
      // make it wait forever, so bound the wait and let the error name the problem.
      await main.transaction(async (trx) => {
        await trx.raw("SET LOCAL lock_timeout = '5s'");
        await trx.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
        await trx.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [stateSchema]);
      });
    } finally {
      await main.destroy();
      await database.release();
    }
  };

  return {
    knex: main,
    schema,
    stateSchema,
    connectionString,
    databaseUrl: database.connectionString,
    kind: database.kind,
    newKnex: (newOptions = {}) => {
      const pool = makeKnex(newOptions.pool, newOptions.applicationName);
      extraPools.add(pool);
      return pool;
    },
    cleanup: () => (cleanedUp ??= cleanup()),
  };
}

/** `pf_<name>_<suffix>` from any suite title: lower-case, `[a-z0-9_]` only, within Postgres' 63-byte limit. */
export function suiteSchemaName(name: string, suffix: string): string {
  const budget = MAX_IDENTIFIER - 'pf__'.length - suffix.length;
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, budget)
    .replace(/_+$/, '');
  return `pf_${cleaned || 'suite'}_${suffix}`;
}
