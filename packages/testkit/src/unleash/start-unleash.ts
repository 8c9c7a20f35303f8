import { startUnleash as startLocalUnleash, type LocalUnleash, type StartUnleashOptions } from '@phaseflag/local';
import { resolveDatabase } from '../database/resolve-database.js';
import { UnleashAdmin } from './unleash-admin.js';

export type { StartUnleashOptions };

/** `@phaseflag/local`'s in-process Unleash, with the operator's hands for tests. */
export interface UnleashServer extends LocalUnleash {
  /** The Admin API with the admin token: what an operator does in the Unleash UI. */
  readonly admin: UnleashAdmin;
}

/**
 * `startUnleash()` of `@phaseflag/local` on the database the suites share (`resolveDatabase()`, held until
 * `stop()`) unless `databaseUrl` names another, plus `admin`. One line on stderr says where it listens.
 */
export async function startUnleash(options: StartUnleashOptions = {}): Promise<UnleashServer> {
  const held = options.databaseUrl ? undefined : await resolveDatabase();
  let server: LocalUnleash;
  try {
    server = await startLocalUnleash({ ...options, databaseUrl: options.databaseUrl ?? held!.connectionString });
  } catch (error) {
    await held?.release();
    throw error;
  }
  process.stderr.write(
    `[phaseflag/testkit] unleash: ${server.url} (database ${server.database}, started in ${server.lastStartMs} ms)\n`,
  );
  const admin = new UnleashAdmin(server.url, server.adminToken);
  // The accessors (port, running, lastStartMs) must keep reading the live server, so this wraps rather than copies.
  return Object.create(server, {
    admin: { value: admin, enumerable: true },
    stop: {
      value: async () => {
        try {
          await server.stop();
        } finally {
          await held?.release();
        }
      },
    },
  }) as UnleashServer;
}
