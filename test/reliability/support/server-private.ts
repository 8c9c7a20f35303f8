/**
 * A throw-away PostgreSQL server of the test's own (initdb on a free port, trust auth, no Unix socket), for the
 * faults that restart the server: never the machine's shared one. Built like testkit's startReplica: the system's
 * binaries, run as the `postgres` OS user when the tests run as root.
 */
import { execFile, execFileSync } from 'node:child_process';
import { appendFile, chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPostgresBinDir, replicaUnavailableReason } from '@phaseflag/testkit';

export interface PrivateServer {
  /** `postgres` superuser, database `postgres`. */
  readonly url: string;
  readonly port: number;
  /** `pg_ctl restart -m <mode> -w`: every session ends; the server is back when it resolves. */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  stop(): Promise<void>;
}

/** Why no private server can start here (the suite skips with it), or undefined. */
export function privateServerUnavailable(): string | undefined {
  return replicaUnavailableReason();
}

function osUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startPrivateServer(): Promise<PrivateServer> {
  const binDir = findPostgresBinDir()!;
  const root = await mkdtemp(join(tmpdir(), 'phaseflag-fault-server-'));
  const user = osUser();
  if (user) await chown(root, user.uid, user.gid);
  const dataDir = join(root, 'data');
  const port = await freePort();
  const run = (tool: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      execFile(
        join(binDir, tool),
        args,
        {
          cwd: root,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', HOME: root },
          timeout: 120_000,
          ...(user ? { uid: user.uid, gid: user.gid } : {}),
        },
        (error, _stdout, stderr) =>
          error ? reject(new Error(`${tool} ${args.join(' ')} failed: ${stderr || error.message}`)) : resolve(),
      );
    });
  const ctl = (...args: string[]) => run('pg_ctl', ['-D', dataDir, '-l', join(root, 'server.log'), ...args]);
  await run('initdb', ['-D', dataDir, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--locale=C', '--no-sync']);
  await appendFile(
    join(dataDir, 'postgresql.conf'),
    `
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = ''
max_connections = 60
shared_buffers = '32MB'
fsync = off
`,
  );
  await ctl('-w', '-t', '60', 'start');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    await ctl('-m', 'immediate', '-w', 'stop').catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  };
  // A test runner that dies must not leave a server behind.
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
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: (mode) => ctl('-m', mode, '-w', '-t', '60', 'restart'),
    stop,
  };
}
