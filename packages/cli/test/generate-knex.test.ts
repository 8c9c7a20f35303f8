import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createSuiteSchema, startUnleash, type Suite, type UnleashServer } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { EXIT } from '../src/exit-codes.js';
import { configOf, createTable, expandObjects, flagsOn, recorded, runController } from './generate-support.js';
import { workdir, wrongRows, type Workdir } from './support.js';

const require = createRequire(import.meta.url);

describe('phaseflag generate --format knex: knex migration files that run the steps through the engine', function () {
  this.timeout(300_000);
  let suite: Suite;
  let unleash: UnleashServer;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('generate knex');
    unleash = await startUnleash();
    w = workdir(suite, {
      UNLEASH_URL: unleash.url,
      UNLEASH_API_TOKEN: unleash.clientToken,
      UNLEASH_ADMIN_TOKEN: unleash.adminToken,
    });
    w.writeConfig(configOf(suite.schema, { 'orders-knex': 'orders_k', 'orders-back': 'orders_b' }));
    // A plain project (no "type": "module"): knex loads the generated .js files with require().
    writeFileSync(join(w.dir, 'package.json'), '{ "name": "app", "private": true }\n');
    await createTable(suite, 'orders_k', 3000);
    await createTable(suite, 'orders_b', 3000);
  });
  after(async () => {
    w?.remove();
    await unleash?.stop();
    await suite?.cleanup();
  });

  const generate = async (args: string[]) => {
    const r = await w.run(['generate', ...args, '--json']);
    assert.equal(r.code, EXIT.ok, r.stderr);
    return r.json<{ files: { path: string; step: string }[] }>().files.map((f) => f.path);
  };
  const migrate = (dir: string, extra: Knex.MigratorConfig = {}): Knex.MigratorConfig => ({
    directory: join(w.dir, dir),
    tableName: `knex_migrations_${dir}`,
    ...extra,
  });

  it('bad input: unknown id, unknown format or option, existing files: a typed error and nothing written', async () => {
    const help = await w.run(['generate', '--help']);
    assert.equal(help.code, EXIT.ok, help.stderr);
    assert.match(help.stdout, /^Usage: phaseflag generate \[options\] <id>/);
    assert.match(help.stdout, /Examples:\n {2}\$ phaseflag generate orders-amount --format knex --out migrations\n/);
    assert.match(help.stdout, /\$ phaseflag generate orders-amount --format sql --naming flyway/);
    const noFormat = await w.run(['generate', 'orders-knex']);
    assert.equal(noFormat.code, EXIT.usage);
    assert.match(noFormat.stderr, /^PF_USAGE_BAD_OPTION: .*'--format <format>' not specified/);
    const unknown = await w.run(['generate', 'nope', '--format', 'knex', '--out', 'bad', '--json']);
    assert.equal(unknown.code, EXIT.usage);
    assert.equal(unknown.json().error.code, 'PF_UNKNOWN_MIGRATION');
    assert.equal(unknown.json().error.value, 'nope');
    const format = await w.run(['generate', 'orders-knex', '--format', 'yaml', '--out', 'bad']);
    assert.equal(format.code, EXIT.usage);
    assert.match(format.stderr, /^PF_USAGE_BAD_OPTION: Unknown --format "yaml"\.\nhint: Use --format knex or sql\./);
    for (const bad of [
      ['--extension', 'ts'],
      ['--only', 'backfill'],
      ['--naming', 'flyway'],
      ['--timestamp', '2026'],
    ]) {
      const r = await w.run(['generate', 'orders-knex', '--format', 'knex', '--out', 'bad', ...bad, '--json']);
      assert.equal(r.code, EXIT.usage, bad.join(' '));
      assert.equal(r.json().error.code, 'PF_USAGE_BAD_OPTION', bad.join(' '));
    }
    assert.equal(existsSync(join(w.dir, 'bad')), false, 'nothing was written');

    await generate(['orders-knex', '--format', 'knex', '--out', 'twice', '--timestamp', '20260101000000']);
    const before = readdirSync(join(w.dir, 'twice')).sort();
    for (const timestamp of ['20260101000000', '20270101000000']) {
      const again = await w.run([
        'generate',
        'orders-knex',
        '--format',
        'knex',
        '--out',
        'twice',
        '--timestamp',
        timestamp,
        '--json',
      ]);
      assert.equal(again.code, EXIT.usage);
      assert.equal(again.json().error.code, 'PF_USAGE_FILE_EXISTS');
      assert.deepEqual([...(again.json().error.value as string[])].sort(), before);
    }
    assert.deepEqual(readdirSync(join(w.dir, 'twice')).sort(), before, 'nothing was added or overwritten');
  });

  it("knex's migrator runs the expand file; the controller carries the migration to contracted by its flags; the contract file is then a no-op and down refuses (contracted is final)", async () => {
    const [expandFile] = await generate(['orders-knex', '--format', 'knex', '--only', 'expand', '--out', 'k1']);
    assert.match(expandFile!, /\/\d{14}_orders-knex_expand\.js$/);
    const source = readFileSync(expandFile!, 'utf8');
    assert.match(source, /exports\.config = \{ transaction: false \};/);
    assert.match(source, /"type": "numeric\(12,2\)"/, 'the declaration is embedded');

    const [batch, log] = (await suite.knex.migrate.latest(migrate('k1'))) as [number, string[]];
    assert.equal(batch, 1);
    assert.equal(log.length, 1);
    const expanded = await recorded(suite, 'orders-knex');
    assert.equal(expanded.phase, 'expanded');
    assert.match(expanded.lastActor!, /^knex-migration:\d{14}_orders-knex_expand\.js$/);
    assert.deepEqual(await expandObjects(suite, 'orders_k'), { column: true, indexValid: true, checkValidated: true });

    // The same file run again (another environment's pipeline, a re-run by hand): nothing moves.
    await (require(expandFile!) as { up(k: Knex): Promise<void> }).up(suite.knex);
    assert.deepEqual(await recorded(suite, 'orders-knex'), expanded);

    await flagsOn(w, unleash, 'orders-knex', ['dual-write', 'backfill', 'read-new', 'contract']);
    assert.equal(await runController(w, 'orders-knex'), 'contracted');
    assert.equal(await wrongRows(suite, 'orders_k'), 0);
    const contracted = await recorded(suite, 'orders-knex');

    await generate(['orders-knex', '--format', 'knex', '--only', 'contract', '--out', 'k1']);
    const [, ran] = (await suite.knex.migrate.latest(migrate('k1'))) as [number, string[]];
    assert.equal(ran.length, 1, 'knex ran the contract file');
    assert.deepEqual(await recorded(suite, 'orders-knex'), contracted, 'and it changed nothing');

    await assert.rejects(
      suite.knex.migrate.rollback(migrate('k1')),
      (e: { code?: string }) => e.code === 'PF_IRREVERSIBLE',
    );
    assert.equal((await recorded(suite, 'orders-knex')).phase, 'contracted');
  });

  it('the reverse: the controller expanded first and the file is a no-op; down rolls back; the contract file contracts from read-new (ES modules)', async () => {
    await flagsOn(w, unleash, 'orders-back', ['dual-write']);
    assert.equal(await runController(w, 'orders-back'), 'dual-write');
    const byController = await recorded(suite, 'orders-back');

    const files = await generate(['orders-back', '--format', 'knex', '--extension', 'mjs', '--out', 'k2']);
    assert.deepEqual(
      files.map((f) => f.replace(/.*\/\d{14}_/, '')),
      ['orders-back_expand.mjs', 'orders-back_contract.mjs'],
    );
    assert.match(readFileSync(files[0]!, 'utf8'), /^export const config = \{ transaction: false \};$/m);
    const esm = migrate('k2', { loadExtensions: ['.mjs'] });
    await assert.rejects(suite.knex.migrate.latest(esm), (e: { code?: string }) => e.code === 'PF_GUARD_REFUSED');
    // The expand file ran (and did nothing), the contract file was refused before read-new: the deploy stops there.
    assert.deepEqual(await recorded(suite, 'orders-back').then((r) => r.phase), byController.phase);
    assert.equal((await recorded(suite, 'orders-back')).version, byController.version);
    const [done, pending] = (await suite.knex.migrate.list(esm)) as [unknown[], unknown[]];
    assert.equal(done.length, 1);
    assert.equal(pending.length, 1);

    // down: rollback from dual-write (trigger, index, check and the column this migration made are dropped).
    await suite.knex.migrate.rollback(esm);
    assert.equal((await recorded(suite, 'orders-back')).phase, 'rolled-back');
    assert.deepEqual(await expandObjects(suite, 'orders_b'), { column: false, indexValid: null, checkValidated: null });

    // Up again: expand starts over from rolled-back, then the controller carries it to read-new (contract flag off).
    await suite.knex.migrate.up(esm);
    assert.equal((await recorded(suite, 'orders-back')).phase, 'expanded');
    await flagsOn(w, unleash, 'orders-back', ['dual-write', 'backfill', 'read-new']);
    assert.equal(await runController(w, 'orders-back'), 'read-new');

    await suite.knex.migrate.latest(esm);
    const after = await recorded(suite, 'orders-back');
    assert.equal(after.phase, 'contracted');
    assert.match(after.lastActor!, /^knex-migration:\d{14}_orders-back_contract\.mjs$/);
    const notNull = await suite.knex.raw(
      "SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass('orders_b') AND attname = 'amount'",
    );
    assert.equal(notNull.rows[0].attnotnull, true, 'contract enforced NOT NULL');
    assert.equal(await wrongRows(suite, 'orders_b'), 0);
  });
});
