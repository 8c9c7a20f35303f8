import assert from 'node:assert/strict';
import { createSuiteSchema, holdsFor, waitFor, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, ordersConfig, phaseOf, rangeTotals, workdir, wrongRows, type Workdir } from './support.js';

/** `phaseflag backfill`: its knobs from another shell, Ctrl-C and the rerun that resumes. */
describe('phaseflag CLI: backfill, its knobs and Ctrl-C', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli backfill');
    w = workdir(suite);
    w.writeConfig(ordersConfig(suite.schema));
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('backfill --set changes the knobs a backfill reads (from another shell); a bad knob is a usage error', async () => {
    await createOrders(suite, 10);
    // Registers the migration (its knobs live in its row; status only reads).
    assert.equal((await w.run(['backfill', 'orders-amount', '--set', 'throttle=off'])).code, EXIT.ok);
    const phase = await phaseOf(suite, 'orders-amount');
    assert.ok(phase === 'pending' || phase === 'rolled-back', `no backfill to pause (${phase})`);
    const r = await w.run(['backfill', 'orders-amount', '--set', 'batch-size=2000', '--set', 'throttle=on', '--json']);
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.deepEqual(r.json(), {
      migrationId: 'orders-amount',
      knobs: { batchSize: 2000, throttle: true, pauseMs: null },
      phase,
    });
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
    // Slow enough that the runner is still going after the checks from other shells below, on a busy machine too.
    await w.run(['backfill', 'orders-amount', '--set', 'delay-ms=1000']);
    const run = w.start(['backfill', 'orders-amount', '--json']);
    await waitFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone >= 500, {
      timeoutMs: 20_000,
      description: 'five batches',
    });

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
    const after = await waitFor(
      async () => {
        const t = await rangeTotals(suite, 'orders-amount');
        return t.rowsDone >= rowsAtSet + 750 ? t : undefined;
      },
      { timeoutMs: 20_000, description: 'batches of 250' },
    );
    // At most one batch of 100 was in flight when the knob changed; every later one is 250: n batches since then
    // hold 250 n rows, or 250 n − 150 with one of 100 among them.
    const n = after.batches - batchesAtSet;
    assert.ok(
      after.rowsDone - rowsAtSet >= 250 * n - 150,
      `the running backfill took the new size (${after.rowsDone - rowsAtSet} rows in ${n} batches)`,
    );

    // --set pause=on from another shell: the runner stops after its batch and waits; pause=off lets it carry on.
    const paused = await w.run(['backfill', 'orders-amount', '--set', 'pause=on', '--json']);
    assert.equal(paused.code, EXIT.ok, paused.stderr);
    assert.equal(paused.json().phase, 'paused');
    // The batch in flight when the pause came commits; then the runner says it waits for a resume.
    await waitFor(() => /waiting: phaseflag resume orders-amount/.test(run.output.stderr), {
      timeoutMs: 20_000,
      description: 'the runner to stop after its batch',
    });
    const held = (await rangeTotals(suite, 'orders-amount')).rowsDone;
    await holdsFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone === held, 900, {
      description: 'no batch while paused',
    });
    assert.equal((await rangeTotals(suite, 'orders-amount')).rowsDone, held, 'no batch runs while paused');
    assert.equal(
      (await w.run(['backfill', 'orders-amount', '--set', 'pause=off', '--json'])).json().phase,
      'backfilling',
    );
    await waitFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone > held, {
      timeoutMs: 20_000,
      description: 'the backfill carries on after pause=off',
    });
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
    await holdsFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone === done, 200, {
      description: 'nothing runs after the exit',
    });
    assert.equal((await rangeTotals(suite, 'orders-amount')).rowsDone, done, 'nothing runs after the exit');

    assert.equal((await w.run(['backfill', 'orders-amount', '--set', 'delay-ms=default'])).code, EXIT.ok);
    const rerun = await w.run(['backfill', 'orders-amount', '--json']);
    assert.equal(rerun.code, EXIT.ok, rerun.stderr);
    assert.equal(rerun.json().rowsScanned, ROWS - done, 'the rerun covers exactly the rows left');
    const totals = await rangeTotals(suite, 'orders-amount');
    assert.equal(totals.rowsDone, ROWS, 'every row counted once');
    assert.ok(
      totals.batches < 45,
      `batches of 250 after the knob changed (${totals.batches} batches for ${ROWS} rows; 60 of 100)`,
    );
    assert.equal(await wrongRows(suite), 0);
  });
});
