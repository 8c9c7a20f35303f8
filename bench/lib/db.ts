import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { resolveDatabase, type ResolvedDatabase } from '@phaseflag/testkit';

/**
 * The benchmark works in a database of its own, created for the run and dropped at its end: other engineers'
 * suites share the server, and a database of our own keeps their catalog lookups and ours apart (WAL and CPU are
 * still shared, which is why every figure is a ratio against a baseline measured in the same run).
 */
export interface BenchDatabase {
  readonly url: string;
  readonly name: string;
  readonly kind: ResolvedDatabase['kind'];
  /** A pool on the bench database; every pool made here is destroyed by close(). */
  pool(applicationName: string, max?: number): Knex;
  close(): Promise<void>;
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const server = await resolveDatabase();
  const name = `pf_bench_${randomBytes(3).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: server.connectionString, pool: { min: 0, max: 1 } });
  try {
    await admin.raw('CREATE DATABASE ??', [name]);
  } catch (error) {
    await admin.destroy();
    await server.release();
    throw error;
  }
  const url = withDatabase(server.connectionString, name);
  const pools = new Set<Knex>();
  return {
    url,
    name,
    kind: server.kind,
    pool(applicationName, max = 10) {
      const k = knexFactory({
        client: 'pg',
        connection: { connectionString: url, application_name: applicationName },
        pool: { min: 0, max },
      });
      pools.add(k);
      return k;
    },
    async close() {
      await Promise.all([...pools].map((p) => p.destroy()));
      try {
        // WITH (FORCE) ends sessions a crashed child may have left behind (PG 13+).
        await admin.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]);
      } finally {
        await admin.destroy();
        await server.release();
      }
    },
  };
}

export function withDatabase(connectionString: string, database: string): string {
  const url = new URL(connectionString);
  url.pathname = `/${database}`;
  return url.toString();
}

/** One value from a one-row query. */
export async function scalar<T>(knex: Knex, sql: string, bindings: readonly unknown[] = []): Promise<T> {
  const row = (await knex.raw(sql, bindings as unknown[])).rows[0] as Record<string, unknown>;
  return Object.values(row)[0] as T;
}
