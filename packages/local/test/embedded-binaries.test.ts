import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runnableBinaries, type ShippedBinaries } from '../src/embedded-binaries.js';
import { LocalError } from '../src/errors.js';
import { serverOsUser, type OsUser } from '../src/os-user.js';

/**
 * A stand-in for the platform package's `native/` (shell scripts as initdb/postgres, a versioned library with
 * its symlink), inside `parent`. The fake version keeps the cache name unique to this run.
 */
async function fakeNative(parent: string): Promise<ShippedBinaries> {
  const nativeDir = join(parent, 'node_modules', 'native');
  await mkdir(join(nativeDir, 'bin'), { recursive: true });
  await mkdir(join(nativeDir, 'lib'), { recursive: true });
  await mkdir(join(nativeDir, 'share', 'postgresql'), { recursive: true });
  for (const tool of ['initdb', 'postgres']) {
    await writeFile(join(nativeDir, 'bin', tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 17"\n`, { mode: 0o755 });
  }
  await writeFile(join(nativeDir, 'share', 'postgresql', 'postgres.bki'), 'bki\n', { mode: 0o644 });
  await writeFile(join(nativeDir, 'lib', 'libfake.so.1.0'), 'elf\n', { mode: 0o755 });
  await symlink('libfake.so.1.0', join(nativeDir, 'lib', 'libfake.so.1'));
  return {
    nativeDir,
    initdb: join(nativeDir, 'bin', 'initdb'),
    postgres: join(nativeDir, 'bin', 'postgres'),
    version: `0.0.0-test-${randomBytes(4).toString('hex')}`,
  };
}

describe('embedded PostgreSQL binaries as root', function () {
  let user: OsUser;
  let scratch: string;
  let cacheRoot: string;

  before(function () {
    const found = serverOsUser();
    if (!found) {
      console.log('      (skipped: only meaningful as root with a "postgres" OS user)');
      this.skip();
    }
    user = found;
  });

  beforeEach(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'phaseflag-binaries-test-'));
    cacheRoot = join(scratch, 'cache');
    await mkdir(cacheRoot);
    await chmod(scratch, 0o755);
    await chmod(cacheRoot, 0o755);
  });

  afterEach(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('runs the binaries in place when the postgres user can reach them', async () => {
    const shipped = await fakeNative(join(scratch, 'open-clone'));
    const binaries = await runnableBinaries(shipped, user, cacheRoot);
    assert.equal(binaries.initdb, shipped.initdb);
    assert.deepEqual(await readdir(cacheRoot), []);
  });

  it('copies native/ once into a shared cache when the clone is private (mode 0700), keeping symlinks', async () => {
    const privateClone = join(scratch, 'private-clone');
    const shipped = await fakeNative(privateClone);
    await chmod(privateClone, 0o700);

    // Concurrent callers: the atomic rename leaves exactly one complete copy and no staging directories.
    const results = await Promise.all([1, 2, 3].map(() => runnableBinaries(shipped, user, cacheRoot)));
    const cacheDir = join(cacheRoot, `phaseflag-embedded-pg-${shipped.version}-${process.platform}-${process.arch}`);
    for (const binaries of results) {
      assert.equal(binaries.nativeDir, cacheDir);
      assert.equal(binaries.initdb, join(cacheDir, 'bin', 'initdb'));
      assert.equal(binaries.postgres, join(cacheDir, 'bin', 'postgres'));
      assert.deepEqual(binaries.user, user);
    }
    assert.deepEqual(await readdir(cacheRoot), [
      `phaseflag-embedded-pg-${shipped.version}-${process.platform}-${process.arch}`,
    ]);
    assert.equal(await readlink(join(cacheDir, 'lib', 'libfake.so.1')), 'libfake.so.1.0');
    assert.equal((await lstat(cacheDir)).mode & 0o777, 0o755);
    assert.equal((await lstat(join(cacheDir, 'bin', 'initdb'))).mode & 0o777, 0o755);
    assert.equal((await lstat(join(cacheDir, 'share', 'postgresql', 'postgres.bki'))).mode & 0o777, 0o644);

    // A later process reuses the cache as it is.
    const again = await runnableBinaries(shipped, user, cacheRoot);
    assert.equal(again.nativeDir, cacheDir);
  });

  it('refuses a cache directory that others could have written to', async () => {
    const privateClone = join(scratch, 'private-clone');
    const shipped = await fakeNative(privateClone);
    await chmod(privateClone, 0o700);
    const cacheDir = join(cacheRoot, `phaseflag-embedded-pg-${shipped.version}-${process.platform}-${process.arch}`);
    await mkdir(cacheDir);
    await chmod(cacheDir, 0o777);
    await assert.rejects(
      runnableBinaries(shipped, user, cacheRoot),
      (error: unknown) => error instanceof LocalError && error.code === 'PF_LOCAL_EMBEDDED_CACHE',
    );
  });
});
