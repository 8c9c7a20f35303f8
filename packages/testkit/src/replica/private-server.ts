import { execFileSync } from 'node:child_process';
import { appendFile, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '@phaseflag/local/internal';
import { serverOsUser } from '@phaseflag/local/internal';
import { findPostgresBinDir, replicaUnavailableReason, runPostgresTool } from './postgres-binaries.js';

export interface PrivateServer {
  /** `postgres` superuser, database `postgres`. */
  readonly url: string;
  readonly port: number;
  /** `pg_ctl restart -m <mode> -w`: every session ends; the server is back when it resolves. */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server (immediate) and deletes its data directory. Idempotent. */
  stop(): Promise<void>;
}

export interface PrivateServerOptions {
  /** The server's max_connections (default 60): a fleet of service instances needs more. */
  readonly maxConnections?: number;
}

/** Why no private server can start here (a suite skips with it), or undefined. */
export function privateServerUnavailable(): string | undefined {
  return replicaUnavailableReason();
}

/**
 * A throw-away PostgreSQL server of the test's own (initdb on a free port, trust auth, no Unix socket), for the
 * faults that restart or stop a server: never the machine's shared one. The system's binaries, run as the
 * `postgres` OS user when the tests run as root; a test process that dies takes its server down with it.
 */
export async function startPrivateServer(options: PrivateServerOptions = {}): Promise<PrivateServer> {
  const maxConnections = options.maxConnections ?? 60;
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 10 || maxConnections > 10_000)
    throw new Error(`startPrivateServer: maxConnections must be an integer from 10 to 10000, got ${maxConnections}.`);
  const reason = privateServerUnavailable();
  if (reason) throw new Error(`Cannot start a private PostgreSQL server: ${reason}.`);
  const binDir = findPostgresBinDir()!;
  const user = serverOsUser();
  const root = await mkdtemp(join(tmpdir(), 'phaseflag-private-server-'));
  if (user) await chown(root, user.uid, user.gid);
  const dataDir = join(root, 'data');
  const port = await findFreePort();
  const run = (tool: string, args: string[]) => runPostgresTool(binDir, tool, args, { cwd: root });
  const ctl = (...args: string[]) => run('pg_ctl', ['-D', dataDir, '-l', join(root, 'server.log'), ...args]);
  await run('initdb', ['-D', dataDir, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--locale=C', '--no-sync']);
  await appendFile(
    join(dataDir, 'postgresql.conf'),
    `
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = ''
max_connections = ${maxConnections}
shared_buffers = '32MB'
fsync = off
`,
  );
  await ctl('-w', '-t', '60', 'start');
  const onExit = () => {
    try {
      execFileSync(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop'], {
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
        stdio: 'ignore',
      });
    } catch {
      // already down
    }
  };
  process.on('exit', onExit);
  let stopped: Promise<void> | undefined;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: async (mode) => {
      await ctl('-m', mode, '-w', '-t', '60', 'restart');
    },
    stop: () =>
      (stopped ??= (async () => {
        process.off('exit', onExit);
        await ctl('-m', 'immediate', '-w', 'stop').catch(() => undefined);
        await rm(root, { recursive: true, force: true });
      })()),
  };
}
