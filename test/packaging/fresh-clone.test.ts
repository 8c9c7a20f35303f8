import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, ok, sh } from './support.js';

/**
 * The root README's sequence in a fresh clone of the committed HEAD (uncommitted changes are not in it):
 * `npm ci`, `npx phaseflag --help` (a clear "build first", not npm's 404), `npm run build`, `npx phaseflag --help`.
 */
describe('packaging: `npx phaseflag` in a fresh clone', function () {
  this.timeout(600_000);
  let dir: string;
  let repo: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'phaseflag-clone-'));
    repo = join(dir, 'repo');
    const head = ok(await sh('git', ['rev-parse', 'HEAD'], ROOT), 'git rev-parse').stdout.trim();
    ok(await sh('git', ['clone', '--quiet', '--no-checkout', ROOT, repo], dir), 'git clone');
    ok(await sh('git', ['checkout', '--quiet', head], repo), 'git checkout');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('links the bin at install, says to build before the build, and prints the help after it', async () => {
    const timings: string[] = [];
    const timed = async (what: string, run: () => Promise<void>) => {
      const started = performance.now();
      await run();
      timings.push(`${what} ${((performance.now() - started) / 1000).toFixed(1)} s`);
    };
    await timed('npm ci', async () => void ok(await sh('npm', ['ci', '--prefer-offline'], repo, 300_000), 'npm ci'));

    const early = await sh('npx', ['--no-install', 'phaseflag', '--help'], repo);
    assert.equal(early.code, 1, `${early.stdout}\n${early.stderr}`);
    assert.match(early.stderr, /not built.*\n.*npm run build/);
    assert.doesNotMatch(early.stderr, /404/);

    await timed('npm run build', async () => void ok(await sh('npm', ['run', 'build'], repo, 300_000), 'build'));
    const help = ok(await sh('npx', ['--no-install', 'phaseflag', '--help'], repo), 'npx phaseflag --help');
    assert.match(help.stdout, /Usage: phaseflag/);
    assert.match(help.stdout, /provision/);
    console.log(`      ${timings.join(', ')}`);
  });
});
