import { randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createDatabase, dropDatabase } from '../databases.js';
import { checkPort, startPostgres, type LocalPostgres } from '../embedded-server.js';
import { LocalError, messageOf } from '../errors.js';
import { findFreePort } from '../free-port.js';
import { onSignalStop } from '../process-exit.js';
import { processSlot } from '../process-state.js';
import { createUnleash, type UnleashInstance } from './unleash-module.js';
import { quietLogger, type RecentLog } from './quiet-logger.js';

export interface StartUnleashOptions {
  /**
   * A PostgreSQL server to create Unleash's database on: the URL of any database there, whose role may CREATE
   * DATABASE. Default: an embedded PostgreSQL (`startPostgres()`) started for this Unleash and stopped with it.
   */
  databaseUrl?: string;
  /** Listen on this port (on 127.0.0.1); it fails when the port is taken. Default: a free port. */
  port?: number;
}

/** The web UI's login on a fresh database (unleash-server's user service creates it: initAdminUsernameUser). */
export const UNLEASH_LOGIN = { username: 'admin', password: 'unleash4all' } as const;

export interface LocalUnleash {
  /** `http://127.0.0.1:<port>`: the web UI, and the base URL of the Admin API (what `provisionFlags` takes). */
  readonly url: string;
  /** `<url>/api`: what unleash-client takes as `url`. */
  readonly apiUrl: string;
  readonly port: number;
  /** `*:*.<random>`, an admin token: the Admin API. */
  readonly adminToken: string;
  /** `default:development.<random>`, a client token for project `default`, environment `development`. */
  readonly clientToken: string;
  /** The environment the client token reads. */
  readonly environment: 'development';
  readonly project: 'default';
  /** The web UI's login: `admin` / `unleash4all`. */
  readonly login: typeof UNLEASH_LOGIN;
  /** `unleash_<random>`, created for this server and dropped by `stop()`. */
  readonly database: string;
  /** The PostgreSQL server it runs on (the embedded one it started, or `databaseUrl`), with Unleash's database. */
  readonly databaseUrl: string;
  /** How long the last (re)start took, in ms; the first includes Unleash's migrations (~2-5 s). */
  readonly lastStartMs: number;
  readonly running: boolean;
  /**
   * Stops serving (open connections are cut at once), stops Unleash's jobs, drops its database, and stops the
   * embedded PostgreSQL when it started one. Idempotent; Ctrl-C does the same (see the README).
   */
  stop(): Promise<void>;
  /**
   * Stops and starts again on the same port and database: flags, tokens and revision survive ("Unleash comes
   * back"). `whileDown` runs between the two, for checks during the outage; the server starts again even when it
   * throws, and its error is rethrown after.
   */
  restart(options?: { whileDown?: () => unknown }): Promise<void>;
}

/**
 * Starts a real unleash-server (6.10.x, the last line that runs on Node 20) inside this process, on PostgreSQL, in a
 * database of its own (a fresh database means fresh API tokens: Unleash creates `initApiTokens` only into a
 * database that has none, and no flags left from an earlier run). Its scheduler stays on: the job that advances
 * the configuration revision runs every second, and without it clients never see a change (their ETag never moves).
 *
 * We call unleash-server's `create()` rather than `start()` and listen ourselves: same options, same app, but
 * `stop()` can cut keep-alive connections at once (an outage, not a 1 s graceful drain), a port taken between
 * choosing and binding is retried without leaking a second Unleash, and no SIGINT/SIGTERM handlers that call
 * `process.exit` are installed in the host. One server at a time per process (see unleash-module.ts).
 */
export async function startUnleash(options: StartUnleashOptions = {}): Promise<LocalUnleash> {
  if (options.port !== undefined) checkPort(options.port, 'port');
  const owned: LocalPostgres | undefined = options.databaseUrl ? undefined : await startPostgres();
  const serverUrl = options.databaseUrl ?? owned!.url;
  const database = `unleash_${randomBytes(4).toString('hex')}`;
  const adminToken = `*:*.${randomBytes(16).toString('hex')}`;
  const clientToken = `default:development.${randomBytes(16).toString('hex')}`;
  const recent: RecentLog = [];

  let databaseUrl: string;
  try {
    databaseUrl = await createDatabase(serverUrl, database);
  } catch (error) {
    await owned?.stop();
    throw new LocalError(
      'PF_LOCAL_UNLEASH_START',
      `Could not create database ${database} for Unleash: ${messageOf(error)}`,
      'Unleash gets a database of its own: the role in databaseUrl needs CREATEDB on that server.',
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
            { secret: adminToken, type: 'admin', environment: '*', project: '*', tokenName: 'phaseflag-local-admin' },
            {
              secret: clientToken,
              type: 'client',
              environment: 'development',
              project: 'default',
              tokenName: 'phaseflag-local-client',
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
    await owned?.stop();
    const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
    throw new LocalError(
      'PF_LOCAL_UNLEASH_START',
      `unleash-server did not start: ${messageOf(error)}${formatRecent(recent)}`,
      inUse
        ? `Port ${port} is taken: pass another port, or none for a free one.`
        : 'Set PHASEFLAG_UNLEASH_LOG=info to see what Unleash logs while starting.',
      { cause: error },
    );
  }

  const url = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      try {
        await halt();
        await dropDatabase(serverUrl, database);
      } finally {
        try {
          await owned?.stop();
        } finally {
          unregisterSignal(); // only now: Ctrl-C during a stop() waits for it
        }
      }
    })());
  const unregisterSignal = onSignalStop(stop);
  return {
    url,
    apiUrl: `${url}/api`,
    get port() {
      return port;
    },
    adminToken,
    clientToken,
    environment: 'development',
    project: 'default',
    login: UNLEASH_LOGIN,
    database,
    databaseUrl,
    get lastStartMs() {
      return lastStartMs;
    },
    get running() {
      return running !== undefined;
    },
    stop,
    restart: async ({ whileDown } = {}) => {
      if (stopped)
        throw new LocalError(
          'PF_LOCAL_UNLEASH_STOPPED',
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

/** The fields of unleash-server's `db` option, from a URL (it would otherwise merge in DATABASE_* variables). */
function unleashDbOptions(databaseUrl: string): Record<string, unknown> {
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
    applicationName: 'unleash-local',
    pool: { min: 0, max: 4, idleTimeoutMillis: 5000, propagateCreateError: false },
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
