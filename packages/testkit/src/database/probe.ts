import knex from 'knex';

/**
 * True when a server at `connectionString` accepts a login and answers a query within about a second.
 * A closed port fails fast, but a firewalled host would hang for the OS connect timeout, hence the short
 * `connectionTimeoutMillis`.
 */
export async function canQuery(connectionString: string, timeoutMs = 1000): Promise<boolean> {
  const probe = knex({
    client: 'pg',
    connection: { connectionString, connectionTimeoutMillis: timeoutMs },
    pool: { min: 0, max: 1 },
    acquireConnectionTimeout: timeoutMs * 2,
  });
  try {
    await probe.raw('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await probe.destroy();
  }
}
