import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import { resolveDatabase, type ResolvedDatabase } from '../database/resolve-database.js';
import { TestkitError, messageOf } from '../errors.js';
import { findFreePort } from '@phaseflag/local/internal';
import { processSlot } from '@phaseflag/local/internal';
import { UnleashAdmin } from './unleash-admin.js';
import { createDatabase, dropDatabase, unleashDbOptions } from './unleash-database.js';
import { createUnleash, type UnleashInstance } from './unleash-module.js';
import { quietLogger, type RecentLog } from './quiet-logger.js';

export interface StartUnleashOptions {
  /** The Postgres server to create Unleash's database on. Default: the one `resolveDatabase()` picks. */
  databaseUrl?: string;
  /** Default: a free port. */
  port?: number;
}

export interface UnleashServer {
  /** `http://127.0.0.1:<port>`; give it to unleash-client as `url: \`${url}/api\``. */
  readonly url: string;
  readonly port: number;
  /** `*:*.<random>`, an admin token: the Admin API. */
  readonly adminToken: string;
  /** `default:development.<random>`, a client token for project `default`, environment `development`. */
  readonly clientToken: string;
  /** The environment the client token reads. */
  readonly environment: 'development';
  /** The operator's hands: the Admin API with the admin token. */
  readonly admin: UnleashAdmin;
  /** `unleash_<random>`, created for this server and dropped by `stop()`. */
  readonly database: string;
  /** How long the last (re)start took, in ms; the first includes Unleash's migrations. */
  readonly lastStartMs: number;
  readonly running: boolean;
  /** Stops serving (open connections are cut at once), stops Unleash's jobs, drops its database. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops and starts again on the same port and database: flags, tokens and revision survive ("Unleash comes
   * back"). `whileDown` runs between the two, for assertions during the outage; the server starts again even
   * when it throws, and its error is rethrown after.
   */
  restart(options?: { whileDown?: () => unknown }): Promise<void>;
}

/**
 * Starts a real unleash-server (6.10.x, the last line that runs on Node 20) inside this process, on Postgres, in a
 * database of its own. Its scheduler stays on: the job that advances the configuration revision runs every second,
 * and without it clients never see a change (their ETag never moves).
 *
 * We call unleash-server's `create()` rather than `start()` and listen ourselves: same options, same app, but
 * `stop()` can cut keep-alive connections at once (an outage, not a 1 s graceful drain), a port taken between
 * choosing and binding is retried without leaking a second Unleash, and no SIGINT/SIGTERM handlers that call
 * `process.exit` are installed in the test runner.
 */
export async function startUnleash(options: StartUnleashOptions = {}): Promise<UnleashServer> {
  const held: ResolvedDatabase | undefined = options.databaseUrl ? undefined : await resolveDatabase();
  const serverUrl = options.databaseUrl ?? held!.connectionString;
  const database = `unleash_${randomBytes(4).toString('hex')}`;
  const adminToken = `*:*.${randomBytes(16).toString('hex')}`;
  const clientToken = `default:development.${randomBytes(16).toString('hex')}`;
  const recent: RecentLog = [];

  let databaseUrl: string;
  try {
    databaseUrl = await createDatabase(serverUrl, database);
  } catch (error) {
    await held?.release();
    throw new TestkitError(
      'PF_TESTKIT_UNLEASH_START',
      `Could not create database ${database} for Unleash: ${messageOf(error)}`,
      'The test role needs CREATEDB on the Postgres server testkit resolved.',
      { cause: error },
    );
  }

  let port = options.port ?? 0;
  let running: { instance: UnleashInstance; http: Server } | undefined;
  let lastStartMs = 0;

  const boot = async (fixedPort: boolean): Promise<void> => {
    const started = performance.now();
    const instance = await serialized(() =>
      createUnleash({
        db: unleashDbOptions(databaseUrl),
        server: {
          host: '127.0.0.1',
          port,
          enableRequestLogger: false,
          gracefulShutdownEnable: false,
          // Prometheus metrics live in prom-client's process-wide registry; a second start would collide there.
          serverMetrics: false,
        },
        authentication: {
          initApiTokens: [
            { secret: adminToken, type: 'admin', environment: '*', project: '*', tokenName: 'phaseflag-test-admin' },
            {
              secret: clientToken,
              type: 'client',
              environment: 'development',
              project: 'default',
              tokenName: 'phaseflag-test-client',
            },
          ],
        },
        // Web UI sessions in memory: the knex session store re-arms a cleanup timer that outlives stop() and then
        // logs "Unable to acquire a connection" against the destroyed pool.
        session: { db: false },
        versionCheck: { enable: false },
        telemetry: false,
        getLogger: quietLogger(recent),
      }),
    );
    try {
      const http = await listenWithRetry(
        instance.app,
        () => port,
        async () => {
          if (fixedPort) return false;
          port = await findFreePort();
          return true;
        },
      );
      port = (http.address() as { port: number }).port;
      running = { instance, http };
    } catch (error) {
      await instance.stop().catch(() => undefined);
      throw error;
    }
    lastStartMs = Math.round(performance.now() - started);
  };

  const halt = async (): Promise<void> => {
    const current = running;
    running = undefined;
    if (!current) return;
    await new Promise<void>((resolve) => {
      current.http.close(() => resolve());
      current.http.closeAllConnections();
    });
    await current.instance.stop();
  };

  try {
    if (port === 0) port = await findFreePort();
    await boot(options.port !== undefined);
  } catch (error) {
    await dropDatabase(serverUrl, database).catch(() => undefined);
    await held?.release();
    throw new TestkitError(
      'PF_TESTKIT_UNLEASH_START',
      `unleash-server did not start: ${messageOf(error)}${formatRecent(recent)}`,
      'Set PHASEFLAG_UNLEASH_LOG=info to see what Unleash logs while starting.',
      { cause: error },
    );
  }

  const url = `http://127.0.0.1:${port}`;
  process.stderr.write(`[phaseflag/testkit] unleash: ${url} (database ${database}, started in ${lastStartMs} ms)\n`);

  let stopped: Promise<void> | undefined;
  return {
    url,
    get port() {
      return port;
    },
    adminToken,
    clientToken,
    environment: 'development',
    admin: new UnleashAdmin(url, adminToken),
    database,
    get lastStartMs() {
      return lastStartMs;
    },
    get running() {
      return running !== undefined;
    },
    stop: () =>
      (stopped ??= (async () => {
        try {
          await halt();
          await dropDatabase(serverUrl, database);
        } finally {
          await held?.release();
        }
      })()),
    restart: async ({ whileDown } = {}) => {
      if (stopped)
        throw new TestkitError(
          'PF_TESTKIT_UNLEASH_STOPPED',
          'restart() after stop()',
          'stop() drops the database; use restart() alone for an outage.',
        );
      await halt();
      try {
        await whileDown?.();
      } finally {
        await boot(true);
      }
    },
  };
}

/** Listens on `port()`; on EADDRINUSE asks `nextPort()` whether to try again (it may pick another port). */
async function listenWithRetry(
  app: RequestListener,
  port: () => number,
  nextPort: () => Promise<boolean>,
): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await listen(app, port());
    } catch (error) {
      const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!inUse || attempt >= 5 || !(await nextPort())) throw error;
    }
  }
}

function listen(app: RequestListener, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.keepAliveTimeout = 15_000; // Unleash's own default; its clients keep connections alive between polls.
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * unleash-server keeps process-wide state that `createUnleash()` resets and records (see unleash-module.ts), so
 * two builds in one process must not interleave.
 */
function serialized<T>(work: () => Promise<T>): Promise<T> {
  const slot = processSlot<{ tail: Promise<unknown> }>('unleash-boot', () => ({ tail: Promise.resolve() }));
  const run = slot.tail.then(work, work);
  slot.tail = run.catch(() => undefined);
  return run;
}

function formatRecent(recent: RecentLog): string {
  return recent.length === 0 ? '' : `\n  last Unleash log lines:\n    ${recent.slice(-10).join('\n    ')}`;
}
