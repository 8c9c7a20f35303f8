import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { findFreePort } from '@phaseflag/local/internal';
import { serverOsUser } from '@phaseflag/local/internal';

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

/** The pgbouncer binary (Debian's package puts it in /usr/sbin), or undefined. */
export function findPgBouncer(): string | undefined {
  for (const path of CANDIDATES) if (existsSync(path)) return path;
  const which = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' });
  const found = which.stdout?.trim();
  return found && existsSync(found) ? found : undefined;
}

/** Why no PgBouncer can start here (a suite skips with it, printed), or undefined when it can. */
export function pgbouncerUnavailable(): string | undefined {
  if (!findPgBouncer()) return 'pgbouncer is not installed (`apt-get install pgbouncer`; .ci/run installs it)';
  if (serverOsUser() === null) return 'running as root and there is no "postgres" OS user to run pgbouncer as';
  return undefined;
}

/**
 * Like pgbouncerUnavailable(), but first installs Debian's package when it is missing and this process may
 * (root, apt-get present), as the test set-up does for Chromium: a fresh machine then runs the pooler suites
 * instead of skipping them. Returns the reason that remains, or undefined.
 */
export function ensurePgBouncer(): string | undefined {
  if (!findPgBouncer() && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', 'pgbouncer'], { stdio: 'ignore', env, timeout: 300_000 });
    } catch {
      // said below: still not installed
    }
  }
  return pgbouncerUnavailable();
}

export interface StartPgBouncerOptions {
  /** The server it pools for, as a postgres:// URL (host and port are taken from it). */
  readonly target: string;
  /** PgBouncer's pool_mode (default `transaction`, the mode most hosted Postgres offerings run). */
  readonly poolMode?: 'transaction' | 'session' | 'statement';
  /** Server connections per database/user pair (PgBouncer's default_pool_size; default 10). */
  readonly poolSize?: number;
  /** Roles clients may log in as (trust auth; each must exist on the server). Default: postgres, root. */
  readonly users?: readonly string[];
}

export interface PgBouncer {
  readonly port: number;
  readonly poolMode: string;
  readonly poolSize: number;
  /** `target` with its host and port replaced by PgBouncer's (same user and database). */
  readonly url: string;
  /** The URL of another database or user through the same PgBouncer. */
  urlFor(database: string, user?: string): string;
  /** Stops PgBouncer (SIGTERM, then SIGKILL) and deletes its files. Idempotent. */
  stop(): Promise<void>;
}

/**
 * A PgBouncer of the test's own, on a free port, in front of `target`: Debian's binary, run as the `postgres` OS
 * user when the tests run as root (it refuses root). Trust auth for the listed users, every database passed
 * through (`* = host=… port=…`), `ignore_startup_parameters` for what node-postgres and psql send. A test process
 * that dies takes it down with it.
 */
export async function startPgBouncer(options: StartPgBouncerOptions): Promise<PgBouncer> {
  const reason = pgbouncerUnavailable();
  if (reason) throw new Error(`Cannot start PgBouncer: ${reason}.`);
  const binary = findPgBouncer()!;
  const target = new URL(options.target);
  const poolMode = options.poolMode ?? 'transaction';
  const poolSize = options.poolSize ?? 10;
  const users = options.users ?? ['postgres', 'root'];
  const user = serverOsUser();
  const root = await mkdtemp(join(tmpdir(), 'phaseflag-pgbouncer-'));
  const port = await findFreePort();
  const ini = join(root, 'pgbouncer.ini');
  const authFile = join(root, 'users.txt');
  await writeFile(authFile, users.map((u) => `"${u.replace(/"/g, '""')}" ""\n`).join(''));
  await writeFile(
    ini,
    `[databases]
* = host=${target.hostname} port=${target.port || '5432'}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${authFile}
pool_mode = ${poolMode}
default_pool_size = ${poolSize}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits,options,search_path
server_login_retry = 1
logfile = ${join(root, 'pgbouncer.log')}
pidfile = ${join(root, 'pgbouncer.pid')}
admin_users = postgres
`,
  );
  if (user) for (const f of [root, ini, authFile]) await chown(f, user.uid, user.gid);
  const child: ChildProcess = spawn(binary, [ini], {
    cwd: root,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  const kill = () => child.kill('SIGKILL');
  process.on('exit', kill);
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (exited || Date.now() > deadline) {
      kill();
      process.off('exit', kill);
      const log = await import('node:fs/promises').then((fs) =>
        fs.readFile(join(root, 'pgbouncer.log'), 'utf8').catch(() => ''),
      );
      await rm(root, { recursive: true, force: true });
      throw new Error(`PgBouncer did not start on port ${port}: ${log.trim().split('\n').slice(-3).join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const urlFor = (database: string, as?: string) => {
    const u = new URL(options.target);
    u.hostname = '127.0.0.1';
    u.port = String(port);
    u.pathname = `/${encodeURIComponent(database)}`;
    if (as !== undefined) u.username = encodeURIComponent(as);
    u.search = '';
    return u.toString();
  };
  let stopped: Promise<void> | undefined;
  return {
    port,
    poolMode,
    poolSize,
    url: urlFor(decodeURIComponent(target.pathname.slice(1) || 'postgres')),
    urlFor,
    stop: () =>
      (stopped ??= (async () => {
        process.off('exit', kill);
        if (!exited) {
          const gone = new Promise<void>((r) => child.once('exit', () => r()));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 3000);
          await gone;
          clearTimeout(t);
        }
        await rm(root, { recursive: true, force: true });
      })()),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1');
  });
}
