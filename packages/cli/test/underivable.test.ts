import assert from 'node:assert/strict';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { phaseOf, workdir, type Workdir } from './support.js';

/** `qty text` → `qty_int integer` by `qty::int`, where some rows hold values that are no integers. */
function stockConfig(schema: string): string {
  return `import { defineConfig } from '@phaseflag/cli';

export default defineConfig({
  migrations: [{
    id: 'stock-qty', table: '${schema}.stock', oldColumn: 'qty',
    newColumn: { name: 'qty_int', type: 'integer' }, backfill: 'qty::int', reverse: 'qty_int::text',
    batch: { size: 200, targetBatchMs: 0, pauseMs: 0 },
  }],
});
`;
}

describe('phaseflag CLI: rows the expression cannot derive', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli underivable');
    w = workdir(suite);
    w.writeConfig(stockConfig(suite.schema));
    await suite.knex.raw('CREATE TABLE stock (id bigint PRIMARY KEY, qty text NOT NULL)');
    await suite.knex.raw(
      "INSERT INTO stock SELECT g, (g % 90)::text FROM generate_series(1, 3000) g; UPDATE stock SET qty = 'N/A' WHERE id = 777",
    );
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('plan --preflight lists the row; dual-write refuses (exit 3) until accepted; a backfill stopped by an unrecorded row exits 6, paused, and status says why', async () => {
    const plan = await w.run(['plan', 'stock-qty', '--preflight']);
    assert.equal(plan.code, EXIT.ok, plan.stderr);
    assert.match(plan.stdout, /preflight {2}3,000 rows in \d+ ms: 1 cannot be derived, 0 do not round-trip/);
    assert.match(plan.stdout, /fails {2}key \[777\] {2}value "N\/A" {2}invalid input syntax for type integer: "N\/A"/);
    const planJson = (await w.run(['plan', 'stock-qty', '--preflight', '--json'])).json();
    assert.equal(planJson.preflight.failures, 1);

    assert.equal((await w.run(['expand', 'stock-qty'])).code, EXIT.ok);
    const refused = await w.run(['dual-write', 'stock-qty', '--json']);
    assert.equal(refused.code, EXIT.refused);
    assert.equal(refused.json().error.code, 'PF_PREFLIGHT_FAILED');
    assert.match(refused.json().error.hint, /phaseflag dual-write stock-qty --accept-preflight-failures/);
    assert.equal(await phaseOf(suite, 'stock-qty'), 'expanded');

    const accepted = await w.run(['dual-write', 'stock-qty', '--accept-preflight-failures', '--json']);
    assert.equal(accepted.code, EXIT.ok, accepted.stderr);
    // A row written with the trigger off: nobody recorded it.
    await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw("UPDATE stock SET qty = 'lots' WHERE id = 2500");
    });
    const bf = await w.run(['backfill', 'stock-qty', '--json']);
    assert.equal(bf.code, EXIT.rowFailed, bf.stderr);
    const error = bf.json().error;
    assert.equal(error.code, 'PF_BACKFILL_ROW_FAILED');
    assert.deepEqual([error.value.key, error.value.oldValue], [[2500], 'lots']);
    assert.ok(error.value.rowsUpdated > 2000);
    assert.match(
      bf.stderr,
      /PF_BACKFILL_ROW_FAILED: .*key \[2500\]: qty = "lots": invalid input syntax for type integer: "lots"/,
    );

    const text = await w.run(['status', 'stock-qty']);
    assert.match(text.stdout, /paused/);
    assert.match(text.stdout, /backfill stopped: row \[2500\]/);
    assert.doesNotMatch(text.stdout, /ETA/);
    assert.match(text.stdout, /2 row\(s\) the expression cannot derive/);
    const status = (await w.run(['status', 'stock-qty', '--json'])).json().migrations[0];
    assert.equal(status.phase, 'paused');
    assert.match(status.pausedReason, /row \[2500\] \("lots"\) cannot be derived/);
    assert.deepEqual(
      status.underivable.rows.map((r: { key: unknown[]; source: string }) => [r.key, r.source]),
      [
        [[777], 'preflight'],
        [[2500], 'backfill'],
      ],
    );

    // Fixed: the rerun resumes and completes; verify is refused by the accepted row until it is fixed too.
    await suite.knex.raw("UPDATE stock SET qty = '25' WHERE id = 2500");
    const resumed = await w.run(['backfill', 'stock-qty', '--json']);
    assert.equal(resumed.code, EXIT.ok, resumed.stderr);
    const dirty = await w.run(['verify', 'stock-qty', '--json']);
    assert.equal(dirty.code, EXIT.verifyFailed);
    assert.deepEqual(
      dirty.json().underivable.rows.map((r: { key: unknown[] }) => r.key),
      [[777]],
    );
    assert.match(dirty.stderr, /1 row\(s\) the expression cannot derive/);
    await suite.knex.raw("UPDATE stock SET qty = '7' WHERE id = 777");
    const clean = await w.run(['verify', 'stock-qty', '--json']);
    assert.equal(clean.code, EXIT.ok, clean.stderr);
    assert.equal(clean.json().phase, 'verified');
  });
});
