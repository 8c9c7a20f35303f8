import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StaticFlagSource } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { CLI, createOrders, ordersConfig, phaseOf, rangeTotals, sleep, workdir, wrongRows, type Workdir } from './support.js';

const COMMANDS = ['init', 'plan', 'provision', 'status', 'run', 'backfill', 'expand', 'dual-write', 'pause', 'resume', 'read-new', 'read-old', 'rollback', 'contract', 'verify'];
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
    assert.match(bad.stderr, /unknown option/);
    const missing = await w.run(['plan']);
    assert.equal(missing.code, EXIT.usage);
    assert.match(missing.stderr, /missing required argument 'id'/);
    for (const args of [['run', 'orders-amount', '--timeout', 'soon'], ['run', 'orders-amount', '--interval', '5'], ['status', '--wait-flags', '-1'], ['verify', 'orders-amount', '--batch-size', '1e3']]) {
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
      assert.match(readFileSync(join(fresh.dir, 'migrations', 'init-amount.ts'), 'utf8'), /defineMigration\(\{\n {2}id: 'init-amount'/);
      const again = await fresh.run(['init', '--id', 'init-amount']);
      assert.equal(again.code, EXIT.usage, 'init does not overwrite');
      assert.match(again.stderr, /PF_USAGE_FILE_EXISTS/);
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
      const r = await fresh.run(['init', '--intent', 'derive', '--id', 'users-email', '--table', 'users', '--old-column', 'email',
        '--new-column', 'email_lower', '--type', 'text', '--backfill', 'lower(email)']);
      assert.equal(r.code, EXIT.ok, r.stderr);
      const source = readFileSync(join(fresh.dir, 'migrations', 'users-email.ts'), 'utf8');
      assert.match(source, /intent: 'derive'/);
      assert.doesNotMatch(source, /reverse:/);
      const replace = await fresh.run(['init', '--force']);
      assert.equal(replace.code, EXIT.ok, replace.stderr);
      assert.match(readFileSync(join(fresh.dir, 'migrations', 'orders-amount.ts'), 'utf8'), /intent: 'replace'/, 'no terminal, no --intent: replace');
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
      const plan = spawnSync(process.execPath, [CLI, 'plan', 'orders-amount', '--json'], { cwd: dir, encoding: 'utf8' });
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
    assert.match(r.stdout, /\[add-column\] ACCESS EXCLUSIVE, lock wait ≤ 1m00s/);
    assert.match(r.stdout, /\[backfill-batch\] ROW EXCLUSIVE/);
    assert.ok(!r.stdout.includes(ESC), 'no colour when stdout is not a terminal');
    const json = (await w.run(['plan', 'orders-amount', '--json'])).json();
    assert.deepEqual(json.phases.map((p: { phase: string }) => p.phase), ['expand', 'dual-write', 'backfill', 'verify', 'read-new', 'contract', 'rollback']);
    assert.equal(json.phases[0].statements[0].lock, 'ACCESS EXCLUSIVE');
    const col = await suite.knex.raw("SELECT 1 FROM information_schema.columns WHERE table_schema = ? AND table_name = 'orders' AND column_name = 'amount'", [suite.schema]);
    assert.equal(col.rows.length, 0, 'plan executed nothing');
    const colored = await w.run(['plan', 'orders-amount'], { env: { FORCE_COLOR: '1' } });
    assert.ok(colored.stdout.includes(ESC), 'FORCE_COLOR forces colour');
  });

  it('cannot reach the database: exit 5 with the code and a hint; flags beat the environment, which beats the config', async () => {
    const r = await w.run(['status', '--json'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' } });
    assert.equal(r.code, EXIT.unavailable, r.stderr);
    assert.equal(r.json().error.code, 'PF_DATABASE_UNAVAILABLE');
    assert.match(r.stderr, /hint: Check --database-url/);
    const flagWins = await w.run(['status', '--database-url', suite.databaseUrl], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' } });
    assert.equal(flagWins.code, EXIT.ok, flagWins.stderr);
    const cfg = workdir(suite, { DATABASE_URL: '' });
    try {
      cfg.writeConfig(ordersConfig(suite.schema).replace('migrations: [', `database: { url: 'postgres://postgres@127.0.0.1:1/nowhere' },\n  migrations: [`));
      assert.equal((await cfg.run(['status'], { env: { DATABASE_URL: suite.databaseUrl } })).code, EXIT.ok, 'the environment beats the config');
      assert.equal((await cfg.run(['status'], { env: { DATABASE_URL: undefined } })).code, EXIT.unavailable, 'the config is used when nothing else is given');
    } finally {
      cfg.remove();
    }
  });

  it('walks a migration by hand: refusals exit 3, backfill and verify report as JSON, a dirty verify exits 4', async () => {
    await createOrders(suite, 1000);
    const refused = await w.run(['dual-write', 'orders-amount', '--json']);
    assert.equal(refused.code, EXIT.refused);
    assert.equal(refused.json().error.code, 'PF_GUARD_REFUSED');
    assert.match(refused.stderr, /^PF_GUARD_REFUSED: .*"dual-write" applies from expanded, not from pending/);

    assert.equal((await w.run(['expand', 'orders-amount'])).code, EXIT.ok);
    const dw = await w.run(['dual-write', 'orders-amount', '--json']);
    assert.deepEqual(dw.json(), { migrationId: 'orders-amount', action: 'dual-write', from: 'expanded', to: 'dual-write', phase: 'dual-write' });

    const status = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0];
    assert.equal(status.phase, 'dual-write');
    assert.deepEqual(status.guards.map((g: { action: string; allowed: boolean }) => [g.action, g.allowed]), [['stop-dual-write', true], ['backfill', true], ['rollback', true]]);
    assert.equal(status.flagSource, 'none');

    const bf = await w.run(['backfill', 'orders-amount', '--json']);
    assert.equal(bf.code, EXIT.ok, bf.stderr);
    const result = bf.json();
    assert.equal(result.completed, true);
    assert.equal(result.phase, 'backfilled');
    assert.equal(result.rowsDone, 1000);
    assert.equal(result.batches, 10);
    assert.equal(await wrongRows(suite), 0);

    const contract = await w.run(['contract', 'orders-amount']);
    assert.equal(contract.code, EXIT.refused);

    // Behind the sync trigger's back (it would keep both columns in step): what a verify exists to catch.
    await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw('UPDATE orders SET amount = 0 WHERE id IN (7, 9)');
    });
    const dirty = await w.run(['verify', 'orders-amount', '--json']);
    assert.equal(dirty.code, EXIT.verifyFailed, dirty.stderr);
    const d = dirty.json();
    assert.equal(d.clean, false);
    assert.equal(d.mismatches, 2);
    assert.deepEqual(d.sampleKeys, [[7], [9]]);
    assert.equal(d.error.code, 'PF_VERIFY_FAILED');
    assert.match(dirty.stderr, /^PF_VERIFY_FAILED: /);

    assert.match(dirty.stderr, /phaseflag repair orders-amount/, 'the way out is named');
    assert.equal(d.next, 'phaseflag repair orders-amount');

    const stillDone = await w.run(['backfill', 'orders-amount']);
    assert.equal(stillDone.code, EXIT.ok);
    assert.match(stillDone.stderr + stillDone.stdout, /2 row\(s\) that differ: `phaseflag repair orders-amount`/, 'backfill points at repair');

    // The way out: repair re-derives exactly the rows that differ, then verifies.
    const repaired = await w.run(['repair', 'orders-amount', '--json']);
    assert.equal(repaired.code, EXIT.ok, repaired.stderr);
    const rep = repaired.json();
    assert.equal(rep.rowsRepaired, 2);
    assert.equal(rep.clean, true);
    assert.equal(rep.phase, 'verified');
    assert.equal(await wrongRows(suite), 0);
    const nothing = await w.run(['repair', 'orders-amount']);
    assert.equal(nothing.code, EXIT.refused, 'nothing to repair once verified');

    // The emergency lever: read-old holds reads on the old column, status shows it, read-new releases it.
    { const rn = await w.run(['read-new', 'orders-amount']); assert.equal(rn.code, EXIT.ok, rn.stderr); }
    const lever = await w.run(['read-old', 'orders-amount', '--json']);
    assert.deepEqual(lever.json(), { migrationId: 'orders-amount', action: 'read-old', from: 'read-new', to: 'verified', phase: 'verified' });
    const held = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0];
    assert.ok(typeof held.readsHeld?.since === 'string' && !Number.isNaN(Date.parse(held.readsHeld.since)), JSON.stringify(held.readsHeld));
    assert.match((await w.run(['status', 'orders-amount'])).stdout, /reads held[\s\S]*phaseflag read-new/);
    assert.equal((await w.run(['read-new', 'orders-amount'])).code, EXIT.ok);
    assert.equal((await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].readsHeld, null);

    const rb = await w.run(['rollback', 'orders-amount']);
    assert.equal(rb.code, EXIT.ok, rb.stderr);
    assert.equal(await phaseOf(suite, 'orders-amount'), 'rolled-back');
  });

  it('status lists each service instance that reports, the phase it applies and the columns it reads and writes', async () => {
    await createOrders(suite, 10);
    await w.run(['status', 'orders-amount']); // registers the migration, as a service's start-up does
    const phase = await phaseOf(suite, 'orders-amount');
    // A service instance embedding phaseflag: its router heartbeats into the state store.
    const pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
    const handle = pf.migration({
      id: 'orders-amount', table: `${suite.schema}.orders`, oldColumn: 'amount_cents', newColumn: { name: 'amount', type: 'numeric(12,2)' },
      backfill: 'amount_cents::numeric / 100', reverse: '(amount * 100)::integer', batch: { size: 100, targetBatchMs: 0, pauseMs: 0 },
    });
    try {
      await handle.router(new StaticFlagSource({}), { instanceId: 'orders-7f9c', heartbeatMs: 200 });
      await waitFor(async () => (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].instances.length > 0,
        { timeoutMs: 20_000, description: 'the instance reported' });
      const [inst] = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].instances;
      assert.equal(inst.instanceId, 'orders-7f9c');
      assert.equal(inst.phase, phase);
      assert.equal(inst.live, true);
      assert.deepEqual([inst.readsOld, inst.readsNew, inst.writesOld], [true, false, true], 'before read-new: reads and writes the old column');
      assert.equal(inst.pid, process.pid);
      const human = await w.run(['status', 'orders-amount']);
      assert.match(human.stdout, new RegExp(`orders-7f9c\\s+│ ${phase}\\s+│ yes\\s+│ old\\s+│ old\\s+│ \\d+s ago`));
    } finally {
      await pf.close();
    }
  });

  it('backfill --set changes the knobs a backfill reads (from another shell); a bad knob is a usage error', async () => {
    await createOrders(suite, 10);
    await w.run(['status', 'orders-amount']); // registers the migration (its knobs live in its row)
    const phase = await phaseOf(suite, 'orders-amount');
    assert.ok(phase === 'pending' || phase === 'rolled-back', `no backfill to pause (${phase})`);
    const r = await w.run(['backfill', 'orders-amount', '--set', 'batch-size=2000', '--set', 'throttle=on', '--json']);
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.deepEqual(r.json(), { migrationId: 'orders-amount', knobs: { batchSize: 2000, throttle: true, pauseMs: null }, phase });
    const back = await w.run(['backfill', 'orders-amount', '--set', 'batch-size=auto', '--set', 'throttle=off']);
    assert.match(back.stdout, new RegExp(`batch-size=auto throttle=off delay-ms=default \\(phase ${phase}\\)`));
    // pause=on is a phase change: refused where there is no backfill to pause, and then no knob changes either.
    const refused = await w.run(['backfill', 'orders-amount', '--set', 'pause=on', '--set', 'batch-size=7', '--json']);
    assert.equal(refused.code, EXIT.refused, refused.stderr);
    assert.equal(refused.json().error.code, 'PF_GUARD_REFUSED');
    assert.match((await w.run(['backfill', 'orders-amount', '--set', 'throttle=off'])).stdout, /batch-size=auto /);
    for (const bad of ['batch-size=0', 'throttle=maybe', 'chunk=3', 'delay-ms', 'pause=soon']) {
      const b = await w.run(['backfill', 'orders-amount', '--set', bad]);
      assert.equal(b.code, EXIT.usage, bad);
      assert.match(b.stderr, /PF_USAGE_BAD_KNOB/);
    }
  });

  it('Ctrl-C pauses the backfill after its batch (exit 130); a rerun resumes with no row skipped or redone', async () => {
    const ROWS = 6000;
    await createOrders(suite, ROWS);
    const expand = await w.run(['expand', 'orders-amount']);
    assert.equal(expand.code, EXIT.ok, expand.stderr);
    assert.equal((await w.run(['dual-write', 'orders-amount'])).code, EXIT.ok);
    await w.run(['backfill', 'orders-amount', '--set', 'delay-ms=300']);
    const run = w.start(['backfill', 'orders-amount', '--json']);
    await waitFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone >= 500, { timeoutMs: 20_000, description: 'five batches' });

    // From another shell while it runs: status names the runner, a second runner is refused, a knob is taken up.
    const st = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0];
    assert.equal(st.phase, 'backfilling');
    assert.ok(st.backfill.runner?.pid > 0, 'status shows who runs the backfill');
    assert.equal(st.backfill.runner.applicationName, 'phaseflag-cli');
    const second = await w.run(['backfill', 'orders-amount', '--json']);
    assert.equal(second.code, EXIT.refused, second.stderr);
    assert.equal(second.json().error.code, 'PF_BACKFILL_LOCKED');
    assert.equal((await w.run(['backfill', 'orders-amount', '--set', 'batch-size=250'])).code, EXIT.ok);
    const { rowsDone: rowsAtSet, batches: batchesAtSet } = await rangeTotals(suite, 'orders-amount');
    const after = await waitFor(async () => {
      const t = await rangeTotals(suite, 'orders-amount');
      return t.rowsDone >= rowsAtSet + 750 ? t : undefined;
    }, { timeoutMs: 20_000, description: 'batches of 250' });
    // At most one batch of 100 was in flight when the knob changed; every later one is 250: n batches since then
    // hold 250 n rows, or 250 n − 150 with one of 100 among them.
    const n = after.batches - batchesAtSet;
    assert.ok(after.rowsDone - rowsAtSet >= 250 * n - 150, `the running backfill took the new size (${after.rowsDone - rowsAtSet} rows in ${n} batches)`);

    // --set pause=on from another shell: the runner stops after its batch and waits; pause=off lets it carry on.
    const paused = await w.run(['backfill', 'orders-amount', '--set', 'pause=on', '--json']);
    assert.equal(paused.code, EXIT.ok, paused.stderr);
    assert.equal(paused.json().phase, 'paused');
    await sleep(500); // the batch in flight when the pause came
    const held = (await rangeTotals(suite, 'orders-amount')).rowsDone;
    await sleep(900);
    assert.equal((await rangeTotals(suite, 'orders-amount')).rowsDone, held, 'no batch runs while paused');
    assert.equal((await w.run(['backfill', 'orders-amount', '--set', 'pause=off', '--json'])).json().phase, 'backfilling');
    await waitFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone > held, { timeoutMs: 20_000, description: 'the backfill carries on after pause=off' });
    run.child.kill('SIGINT');
    const first = await run.done;
    assert.equal(first.code, EXIT.interrupted, first.stderr);
    assert.match(first.stderr, /paused: orders-amount at .*`phaseflag backfill orders-amount` resumes it/);
    const j = first.json();
    assert.equal(j.stoppedBy, 'interrupted');
    assert.equal(j.phase, 'paused');
    assert.equal(await phaseOf(suite, 'orders-amount'), 'paused');
    const done = (await rangeTotals(suite, 'orders-amount')).rowsDone;
    assert.ok(done > 0 && done < ROWS, `stopped part-way (${done})`);
    await sleep(200);
    assert.equal((await rangeTotals(suite, 'orders-amount')).rowsDone, done, 'nothing runs after the exit');

    assert.equal((await w.run(['backfill', 'orders-amount', '--set', 'delay-ms=default'])).code, EXIT.ok);
    const rerun = await w.run(['backfill', 'orders-amount', '--json']);
    assert.equal(rerun.code, EXIT.ok, rerun.stderr);
    assert.equal(rerun.json().rowsScanned, ROWS - done, 'the rerun covers exactly the rows left');
    const totals = await rangeTotals(suite, 'orders-amount');
    assert.equal(totals.rowsDone, ROWS, 'every row counted once');
    assert.ok(totals.batches < 45, `batches of 250 after the knob changed (${totals.batches} batches for ${ROWS} rows; 60 of 100)`);
    assert.equal(await wrongRows(suite), 0);
  });
});
