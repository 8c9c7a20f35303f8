import { startPostgres, type LocalPostgres } from './embedded-server.js';
import { onSignalStop } from './process-exit.js';
import { startUnleash, type LocalUnleash } from './unleash/start-unleash.js';

export interface StartLocalStackOptions {
  /**
   * Use this PostgreSQL instead of starting an embedded one: the application's database (left as it is) and the
   * server Unleash creates its own database on (the role needs CREATEDB; that database is dropped by `stop()`).
   */
  databaseUrl?: string;
  /** The embedded server's database for the application (default `app`). Ignored with `databaseUrl`. */
  database?: string;
  /** The embedded PostgreSQL's port (default: a free one). Ignored with `databaseUrl`. */
  postgresPort?: number;
  /** Unleash's port (default: a free one). */
  unleashPort?: number;
}

/** PostgreSQL and Unleash on this machine, for a person's development, a demo or a test run (see `startLocalStack`). */
export interface LocalStack {
  /** The application's database: the embedded server's `database`, or the `databaseUrl` given. */
  readonly databaseUrl: string;
  /** The embedded PostgreSQL, when the stack started one (not with `databaseUrl`). */
  readonly postgres: LocalPostgres | undefined;
  readonly unleash: LocalUnleash;
  /** The environment variables an application reads: DATABASE_URL, UNLEASH_URL (the API), the two tokens. */
  readonly env: {
    DATABASE_URL: string;
    UNLEASH_URL: string;
    UNLEASH_API_TOKEN: string;
    UNLEASH_ADMIN_TOKEN: string;
  };
  /** Unleash first (its database dropped), then the embedded PostgreSQL (data directory deleted). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts an embedded PostgreSQL (unless `databaseUrl` names one) and an in-process unleash-server on it, in a
 * database of its own. `stop()`, and Ctrl-C or SIGTERM in a process that does not handle them itself, stop both
 * in that order and leave nothing behind: no process, no data directory, no database.
 */
export async function startLocalStack(options: StartLocalStackOptions = {}): Promise<LocalStack> {
  const postgres = options.databaseUrl
    ? undefined
    : await startPostgres({
        database: options.database ?? 'app',
        ...(options.postgresPort !== undefined ? { port: options.postgresPort } : {}),
      });
  const databaseUrl = options.databaseUrl ?? postgres!.url;
  let unleash: LocalUnleash;
  try {
    unleash = await startUnleash({
      databaseUrl,
      ...(options.unleashPort !== undefined ? { port: options.unleashPort } : {}),
    });
  } catch (error) {
    await postgres?.stop();
    throw error;
  }
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      try {
        await unleash.stop();
      } finally {
        try {
          await postgres?.stop();
        } finally {
          unregisterSignal(); // only now: Ctrl-C during a stop() waits for it
        }
      }
    })());
  const unregisterSignal = onSignalStop(stop);
  return {
    databaseUrl,
    postgres,
    unleash,
    env: {
      DATABASE_URL: databaseUrl,
      UNLEASH_URL: unleash.apiUrl,
      UNLEASH_API_TOKEN: unleash.clientToken,
      UNLEASH_ADMIN_TOKEN: unleash.adminToken,
    },
    stop,
  };
}
