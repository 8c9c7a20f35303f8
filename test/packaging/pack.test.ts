import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PUBLISHED, ROOT, ok, sh } from './support.js';

interface PackedFile {
  path: string;
}
interface Packed {
  name: string;
  files: PackedFile[];
}
interface Manifest {
  name: string;
  private?: boolean;
  license?: string;
  repository?: { type?: string; url?: string; directory?: string };
  engines?: { node?: string };
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** The libraries an application has its own copy of: phaseflag must use that one, not bring a second. */
const SHARED = ['knex', 'pg', 'unleash-client', '@opentelemetry/api'];
const RANGE = /^\^\d+\.\d+\.\d+$/;

describe('packaging: what `npm pack` puts in each published package', function () {
  this.timeout(120_000);

  it('the root has the Apache-2.0 LICENSE the manifests name', () => {
    const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
  });

  for (const name of PUBLISHED) {
    it(`@phaseflag/${name}: LICENSE, README, dist, manifest fields, shared libraries as peers with ranges`, async () => {
      const dir = join(ROOT, 'packages', name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
      const [packed] = JSON.parse(ok(await sh('npm', ['pack', '--dry-run', '--json'], dir), 'npm pack').stdout) as [
        Packed,
      ];
      const paths = packed.files.map((f) => f.path);
      for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts'])
        assert.ok(paths.includes(file), `${packed.name} packs ${file} (has ${paths.join(', ')})`);
      assert.ok(!paths.some((p) => p.startsWith('src/') || p.startsWith('test/')), 'no sources or tests');
      assert.ok(!existsSync(join(dir, 'LICENSE')), 'postpack removed the copied LICENSE');

      assert.notEqual(manifest.private, true);
      assert.equal(manifest.license, 'Apache-2.0');
      assert.equal(manifest.repository?.type, 'git');
      assert.match(manifest.repository?.url ?? '', /^git\+https:\/\/.+\.git$/);
      assert.equal(manifest.repository?.directory, `packages/${name}`);
      assert.match(manifest.engines?.node ?? '', /^>=20/);
      for (const lib of SHARED) {
        assert.equal(manifest.dependencies?.[lib], undefined, `${lib} is not a dependency of ${manifest.name}`);
        const peer = manifest.peerDependencies?.[lib];
        if (peer === undefined) continue;
        assert.match(peer, RANGE, `${lib} is a peer with a range`);
        assert.ok(manifest.devDependencies?.[lib], `${lib} stays a devDependency for the workspace`);
      }
    });
  }

  it('postgres peers knex and pg, unleash peers unleash-client, the CLI all three; the libraries peer @opentelemetry/api', () => {
    const peers = (name: string) =>
      Object.keys(
        (JSON.parse(readFileSync(join(ROOT, 'packages', name, 'package.json'), 'utf8')) as Manifest).peerDependencies ??
          {},
      );
    assert.ok(
      ['knex', 'pg', '@opentelemetry/api'].every((p) => peers('postgres').includes(p)),
      String(peers('postgres')),
    );
    assert.ok(['unleash-client', '@opentelemetry/api'].every((p) => peers('unleash').includes(p)));
    assert.ok(peers('core').includes('@opentelemetry/api'));
    assert.ok(['knex', 'pg', 'unleash-client'].every((p) => peers('cli').includes(p)));
  });

  it('the CLI bin is the committed shim, packed, and it starts the built CLI', async () => {
    const cli = join(ROOT, 'packages', 'cli');
    const manifest = JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8')) as Manifest;
    assert.equal(manifest.bin?.phaseflag, 'bin/phaseflag.js');
    const help = ok(await sh(process.execPath, [join(cli, 'bin', 'phaseflag.js'), '--help'], cli), 'phaseflag --help');
    assert.match(help.stdout, /Usage: phaseflag/);
  });
});
