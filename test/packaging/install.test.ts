import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PUBLISHED, ROOT, ok, sh } from './support.js';

/**
 * The packed tarballs installed into a fresh application, with its own knex, pg and unleash-client from the npm
 * registry, as a user installs them: one copy of each shared library, ESM and CommonJS entry points load, the
 * bin runs.
 */
describe('packaging: the packed packages installed into a fresh application', function () {
  this.timeout(600_000);
  let dir: string;
  let app: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'phaseflag-install-'));
    const tarballs = join(dir, 'tarballs');
    app = join(dir, 'app');
    mkdirSync(tarballs);
    mkdirSync(app);
    const deps: Record<string, string> = { knex: '^3.1.0', pg: '^8.16.3', 'unleash-client': '^6.1.0' };
    for (const name of PUBLISHED) {
      const packed = ok(
        await sh('npm', ['pack', '--json', '--pack-destination', tarballs], join(ROOT, 'packages', name)),
        `npm pack ${name}`,
      );
      const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
      deps[`@phaseflag/${name}`] = `file:${join(tarballs, filename)}`;
    }
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'commonjs', dependencies: deps }, null, 2),
    );
    ok(await sh('npm', ['install', '--prefer-offline', '--no-package-lock'], app, 300_000), 'npm install');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has one copy of knex, pg, unleash-client and @opentelemetry/api', async () => {
    for (const lib of ['knex', 'pg', 'unleash-client', '@opentelemetry/api']) {
      const found = await sh('npm', ['ls', lib, '--all', '--parseable'], app);
      const copies = new Set(found.stdout.split('\n').filter(Boolean));
      assert.equal(copies.size, 1, `${lib}: ${[...copies].join(', ')}\n${found.stderr}`);
    }
  });

  it('loads every package with require and with import, and runs the bin', async () => {
    const names = PUBLISHED.map((n) => `@phaseflag/${n}`);
    const script = `
      const names = ${JSON.stringify(names)};
      for (const n of names) if (Object.keys(require(n)).length === 0) throw new Error(n + ' (require) exports nothing');
      Promise.all(names.map((n) => import(n))).then((mods) => {
        mods.forEach((m, i) => { if (Object.keys(m).length === 0) throw new Error(names[i] + ' (import) exports nothing'); });
        console.log('loaded', names.length);
      });`;
    assert.match(ok(await sh(process.execPath, ['-e', script], app), 'load').stdout, /loaded 5/);
    const help = ok(await sh('npx', ['--no-install', 'phaseflag', '--help'], app), 'npx phaseflag --help');
    assert.match(help.stdout, /Usage: phaseflag/);
  });
});
