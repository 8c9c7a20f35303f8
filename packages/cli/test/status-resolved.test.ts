import assert from 'node:assert/strict';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, workdir, type Workdir } from './support.js';

/** The table named without a schema: it resolves through the connection's search_path, as a service's queries do. */
const UNQUALIFIED = `import { defineConfig } from '@phaseflag/cli';

export default defineConfig({
  migrations: [{
    id: 'orders-amount',
    table: 'orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false },
    backfill: 'amount_cents::numeric / 100',
    reverse: '(amount * 100)::integer',
    batch: { size: 100, targetBatchMs: 0, pauseMs: 0 },
  }],
});
`;

describe('phaseflag CLI: status shows what the database resolved', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli status resolved');
    // The connection's search_path names the suite's schema, not public.
    w = workdir(suite, { DATABASE_URL: suite.connectionString });
    w.writeConfig(UNQUALIFIED);
    await createOrders(suite, 300);
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('names the schema a table resolves to through the search_path, as plan does, in text and in --json', async () => {
    const plan = (await w.run(['plan', 'orders-amount', '--json'])).json();
    assert.deepEqual(plan.table, { schema: suite.schema, name: 'orders' });
    const json = await w.run(['status', '--json']);
    assert.equal(json.code, EXIT.ok, json.stderr);
    const m = json.json().migrations[0];
    assert.equal(m.table, `${suite.schema}.orders`);
    assert.equal(m.oldColumnDropped, false);
    assert.equal(m.error, null);
    const text = await w.run(['status']);
    assert.equal(text.code, EXIT.ok, text.stderr);
    assert.match(text.stdout, new RegExp(`orders-amount {2}${suite.schema}\\.orders: amount_cents → amount`));
    assert.ok(!text.stdout.includes('public.orders'), text.stdout);
  });

  it('after contract dropped the old column: status, plan and every step still work, and say it was dropped', async () => {
    for (const step of ['expand', 'dual-write', 'backfill', 'verify', 'read-new']) {
      const r = await w.run([step, 'orders-amount']);
      assert.equal(r.code, EXIT.ok, `${step}: ${r.stderr}`);
    }
    const contract = await w.run(['contract', 'orders-amount', '--confirm', '--drop-old-column', '--json']);
    assert.equal(contract.code, EXIT.ok, contract.stderr);
    assert.equal(contract.json().phase, 'contracted');
    const gone = await suite.knex.raw(
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = 'orders' AND column_name = 'amount_cents'",
      [suite.schema],
    );
    assert.equal(gone.rows[0].n, 0, 'the old column is dropped');

    const status = await w.run(['status', '--json']);
    assert.equal(status.code, EXIT.ok, status.stderr);
    const m = status.json().migrations[0];
    assert.deepEqual(
      { table: m.table, phase: m.phase, oldColumnDropped: m.oldColumnDropped, error: m.error },
      { table: `${suite.schema}.orders`, phase: 'contracted', oldColumnDropped: true, error: null },
    );
    assert.deepEqual(m.guards, [], 'contracted is final: no transition starts from it');
    const text = await w.run(['status']);
    assert.match(text.stdout, /amount_cents \(dropped\) → amount/);

    const plan = await w.run(['plan', 'orders-amount']);
    assert.equal(plan.code, EXIT.ok, plan.stderr);
    assert.match(plan.stdout, /amount_cents integer \(dropped by contract\) → amount numeric\(12,2\)/);
    const again = await w.run(['rollback', 'orders-amount', '--json']);
    assert.equal(again.code, EXIT.refused, again.stderr);
    assert.equal(again.json().error.code, 'PF_IRREVERSIBLE');
  });
});
