import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { CLI, createOrders, ordersConfig, workdir, type Workdir } from './support.js';

const COMMANDS = [
  'init',
  'plan',
  'provision',
  'status',
  'history',
  'install',
  'grants',
  'run',
  'backfill',
  'expand',
  'dual-write',
  'pause',
  'resume',
  'read-new',
  'read-old',
  'rollback',
  'contract',
  'verify',
  'lint',
  'drift',
  'generate',
  'check',
  'rehearse',
];
const ESC = '\u001b[';

describe('phaseflag CLI: commands, exit codes and --json', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli commands');
    w = workdir(suite);
    w.writeConfig(ordersConfig(suite.schema));
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('prints --help for every command and exits 0; an unknown option is a usage error (2)', async () => {
    for (const cmd of COMMANDS) {
      const r = await w.run([cmd, '--help']);
      assert.equal(r.code, EXIT.ok, `${cmd} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`Usage: phaseflag ${cmd}`));
    }
    const bad = await w.run(['status', '--no-such-option']);
    assert.equal(bad.code, EXIT.usage);
    assert.match(bad.stderr, /^PF_USAGE_BAD_OPTION: Unknown option '--no-such-option'/);
    const missing = await w.run(['plan']);
    assert.equal(missing.code, EXIT.usage);
    assert.match(missing.stderr, /^PF_USAGE_BAD_OPTION: Missing required argument 'id'/);
    const json = await w.run(['--json', 'frobnicate']);
    assert.equal(json.code, EXIT.usage);
    assert.equal(JSON.parse(json.stdout).error.code, 'PF_USAGE_BAD_OPTION');
    for (const args of [
      ['run', 'orders-amount', '--timeout', 'soon'],
      ['run', 'orders-amount', '--interval', '5'],
      ['status', '--wait-flags', '-1'],
      ['verify', 'orders-amount', '--batch-size', '1e3'],
    ]) {
      const r = await w.run([...args, '--json']);
      assert.equal(r.code, EXIT.usage, args.join(' '));
      assert.equal(r.json().error.code, 'PF_USAGE_BAD_OPTION', args.join(' '));
      assert.match(r.stderr, /is not a whole number of/);
    }
  });

  it('says which config is missing, with a hint, as text and as JSON (exit 2)', async () => {
    const empty = workdir(suite);
    try {
      const r = await empty.run(['status', '--json']);
      assert.equal(r.code, EXIT.usage);
      assert.match(r.stderr, /^PF_CONFIG_NOT_FOUND: No phaseflag config in .*\nhint: Run `phaseflag init`/);
      const body = r.json<{ error: { code: string; hint: string; exitCode: number } }>();
      assert.equal(body.error.code, 'PF_CONFIG_NOT_FOUND');
      assert.equal(body.error.exitCode, 2);
      assert.match(body.error.hint, /phaseflag init/);
      const unknown = await w.run(['plan', 'nope']);
      assert.equal(unknown.code, EXIT.usage);
      assert.match(unknown.stderr, /PF_UNKNOWN_MIGRATION: No migration "nope".*\nhint: Known ids: orders-amount/);
    } finally {
      empty.remove();
    }
  });

  it('init writes a config and a migration that plan loads as TypeScript, with no build step', async () => {
    const fresh = workdir(suite);
    try {
      await createOrders(suite, 10, 'init_orders');
      const r = await fresh.run(['init', '--id', 'init-amount', '--table', `${suite.schema}.init_orders`]);
      assert.equal(r.code, EXIT.ok, r.stderr);
      assert.ok(existsSync(join(fresh.dir, 'phaseflag.config.ts')));
      assert.match(
        readFileSync(join(fresh.dir, 'migrations', 'init-amount.ts'), 'utf8'),
        /defineMigration\(\{\n {2}id: 'init-amount'/,
      );
      const again = await fresh.run(['init', '--id', 'init-amount']);
      assert.equal(again.code, EXIT.usage, 'init does not overwrite');
      assert.match(again.stderr, /PF_USAGE_DUPLICATE_MIGRATION/);
      const plan = await fresh.run(['plan', 'init-amount', '--json']);
      assert.equal(plan.code, EXIT.ok, plan.stderr);
      assert.equal(plan.json().phases[0].phase, 'expand');
    } finally {
      fresh.remove();
    }
  });

  it('init writes the intent it is given: derive for a column that lives beside its source; anything else is a usage error', async () => {
    const fresh = workdir(suite);
    try {
      const r = await fresh.run([
        'init',
        '--intent',
        'derive',
        '--id',
        'users-email',
        '--table',
        'users',
        '--old-column',
        'email',
        '--new-column',
        'email_lower',
        '--type',
        'text',
        '--backfill',
        'lower(email)',
      ]);
      assert.equal(r.code, EXIT.ok, r.stderr);
      const source = readFileSync(join(fresh.dir, 'migrations', 'users-email.ts'), 'utf8');
      assert.match(source, /intent: 'derive'/);
      assert.doesNotMatch(source, /reverse:/);
      const replace = await fresh.run(['init', '--force']);
      assert.equal(replace.code, EXIT.ok, replace.stderr);
      assert.match(
        readFileSync(join(fresh.dir, 'migrations', 'orders-amount.ts'), 'utf8'),
        /intent: 'replace'/,
        'no terminal, no --intent: replace',
      );
      const bad = await fresh.run(['init', '--intent', 'merge', '--force']);
      assert.equal(bad.code, EXIT.usage);
      assert.match(bad.stderr, /PF_USAGE_BAD_OPTION: --intent merge/);
    } finally {
      fresh.remove();
    }
  });

  it('a config that cannot import the phaseflag packages says to install them (exit 2)', async () => {
    // Outside any project (no node_modules above it), as in a fresh directory where `phaseflag init` was run by npx.
    const dir = mkdtempSync(join(tmpdir(), 'pf-cli-bare-'));
    try {
      const init = spawnSync(process.execPath, [CLI, 'init'], { cwd: dir, encoding: 'utf8' });
      assert.equal(init.status, EXIT.ok, init.stderr);
      const plan = spawnSync(process.execPath, [CLI, 'plan', 'orders-amount', '--json'], {
        cwd: dir,
        encoding: 'utf8',
      });
      assert.equal(plan.status, EXIT.usage);
      const body = JSON.parse(plan.stdout) as { error: { code: string; hint: string } };
      assert.equal(body.error.code, 'PF_CONFIG_INVALID');
      assert.match(body.error.hint, /npm install --save-dev @phaseflag\/cli @phaseflag\/core/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('plan shows each statement with its lock and changes nothing', async () => {
    await createOrders(suite, 500);
    const r = await w.run(['plan', 'orders-amount']);
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(r.stdout, /ALTER TABLE "[^"]+"\."orders" ADD COLUMN IF NOT EXISTS "amount" numeric\(12,2\)/);
    assert.match(r.stdout, /\[add-column\] ACCESS EXCLUSIVE, lock wait ≤ 1m00s \(gives up by \d+m\d+s with back-off\)/);
    assert.match(r.stdout, /\[backfill-batch\] ROW EXCLUSIVE/);
    assert.match(r.stdout, /rows walked by: primary key "orders_pkey" \(id\)/);
    assert.ok(!r.stdout.includes(ESC), 'no colour when stdout is not a terminal');
    const json = (await w.run(['plan', 'orders-amount', '--json'])).json();
    assert.deepEqual(
      json.phases.map((p: { phase: string }) => p.phase),
      ['expand', 'dual-write', 'backfill', 'verify', 'read-new', 'contract', 'rollback'],
    );
    assert.equal(json.phases[0].statements[0].lock, 'ACCESS EXCLUSIVE');
    const col = await suite.knex.raw(
      "SELECT 1 FROM information_schema.columns WHERE table_schema = ? AND table_name = 'orders' AND column_name = 'amount'",
      [suite.schema],
    );
    assert.equal(col.rows.length, 0, 'plan executed nothing');
    const colored = await w.run(['plan', 'orders-amount'], { env: { FORCE_COLOR: '1' } });
    assert.ok(colored.stdout.includes(ESC), 'FORCE_COLOR forces colour');
  });

  it('cannot reach the database: exit 5 with the code and a hint; flags beat the environment, which beats the config', async () => {
    const r = await w.run(['status', '--json'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' } });
    assert.equal(r.code, EXIT.unavailable, r.stderr);
    assert.equal(r.json().error.code, 'PF_DATABASE_UNAVAILABLE');
    assert.match(r.stderr, /hint: Check --database-url/);
    const flagWins = await w.run(['status', '--database-url', suite.databaseUrl], {
      env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' },
    });
    assert.equal(flagWins.code, EXIT.ok, flagWins.stderr);
    const cfg = workdir(suite, { DATABASE_URL: '' });
    try {
      cfg.writeConfig(
        ordersConfig(suite.schema).replace(
          'migrations: [',
          `database: { url: 'postgres://postgres@127.0.0.1:1/nowhere' },\n  migrations: [`,
        ),
      );
      assert.equal(
        (await cfg.run(['status'], { env: { DATABASE_URL: suite.databaseUrl } })).code,
        EXIT.ok,
        'the environment beats the config',
      );
      assert.equal(
        (await cfg.run(['status'], { env: { DATABASE_URL: undefined } })).code,
        EXIT.unavailable,
        'the config is used when nothing else is given',
      );
    } finally {
      cfg.remove();
    }
  });
});
