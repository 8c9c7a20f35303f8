import knex, { type Knex } from 'knex';

/**
 * Unleash gets a database of its own on the test server: its migrations create ~100 tables in `public`, and a
 * fresh database per server means a fresh set of API tokens (Unleash only creates `initApiTokens` into a database
 * that has none) and no flags left over from another suite.
 */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  await withAdmin(serverUrl, (admin) => admin.raw('CREATE DATABASE ??', [name]));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** `WITH (FORCE)` ends sessions still connected (a client pool that has not noticed the stop yet). */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withAdmin(serverUrl, (admin) => admin.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]));
}

/** The fields of unleash-server's `db` option, from a URL (it would otherwise merge in DATABASE_* variables). */
export function unleashDbOptions(databaseUrl: string): Record<string, unknown> {
  const url = new URL(databaseUrl);
  const sslmode = url.searchParams.get('sslmode');
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username || 'postgres'),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)),
    ssl: sslmode && sslmode !== 'disable' ? { rejectUnauthorized: false } : false,
    schema: 'public',
    applicationName: 'unleash-test',
    pool: { min: 0, max: 4, idleTimeoutMillis: 5000, propagateCreateError: false },
  };
}

async function withAdmin<T>(serverUrl: string, run: (admin: Knex) => Promise<T>): Promise<T> {
  const admin = knex({ client: 'pg', connection: serverUrl, pool: { min: 0, max: 1 } });
  try {
    return await run(admin);
  } finally {
    await admin.destroy();
  }
}
