import assert from 'node:assert/strict';
import { Phaseflag } from '@phaseflag/postgres';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, workdir, type Workdir } from './support.js';

const CONFIG = `import { defineConfig } from '@phaseflag/cli';

export default defineConfig({
  migrations: [{
    id: 'orders-amount',
    table: 'orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true, check: { expression: 'amount >= 0' } },
    backfill: 'amount_cents::numeric / 100',
    reverse: '(amount * 100)::integer',
  }],
});
`;

describe('phaseflag drift: the catalog against the migrations, exit codes for CI', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;
  let pf: Phaseflag;
  const index = 'pf_idx_orders_amount';

  before(async () => {
    suite = await createSuiteSchema('cli drift');
    w = workdir(suite, { DATABASE_URL: suite.connectionString });
    w.writeConfig(CONFIG);
    await createOrders(suite, 200);
    // The store as a superuser installs it, with the DDL watch (the test harness turns it off by default).
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, watchDdl: true });
    await pf.install();
    for (const step of ['expand', 'dual-write']) {
      const r = await w.run([step, 'orders-amount']);
      assert.equal(r.code, EXIT.ok, r.stderr);
    }
  });
  after(async () => {
    await pf?.close();
    w?.remove();
    await suite?.cleanup();
  });

  it('exit 0 and "matches the catalog" when it does; --help shows an example and the exit codes', async () => {
    const r = await w.run(['drift']);
    assert.equal(r.code, EXIT.ok, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`orders-amount {2}${suite.schema}\\.orders \\(phase dual-write\\): matches the catalog`),
    );
    assert.match(r.stdout, /DDL on these tables is recorded as it happens/);
    const json = await w.run(['drift', '--json']);
    assert.equal(json.code, EXIT.ok);
    const doc = json.json();
    assert.equal(doc.drifted, false);
    assert.equal(doc.code, null);
    assert.deepEqual(doc.migrations[0].findings, []);
    assert.equal(doc.watch.active, true);
    const help = await w.run(['drift', '--help']);
    assert.equal(help.code, EXIT.ok);
    assert.match(help.stdout, /Examples:\n {2}npx phaseflag drift/);
    assert.match(help.stdout, /0 the catalog matches, 1 drift found/);
  });

  it('exit 1 with expected, found and the repair for each difference, and the DDL recorded with who ran it', async () => {
    await suite.knex.raw('DROP INDEX ??', [index]);
    // A default set by hand (a type change is refused outright while the sync trigger's WHEN clause reads the column).
    await suite.knex.raw('ALTER TABLE orders ALTER COLUMN amount SET DEFAULT 7');
    const r = await w.run(['drift', 'orders-amount']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /2 difference\(s\)/);
    assert.match(
      r.stdout,
      /✗ new column "amount"\n {6}expected: no default \(none declared\)\n {6}found: {4}DEFAULT 7/,
    );
    assert.match(
      r.stdout,
      /✗ index "pf_idx_orders_amount"[\s\S]*found: {4}missing[\s\S]*CREATE INDEX CONCURRENTLY "pf_idx_orders_amount"/,
    );
    assert.match(r.stdout, /DDL phaseflag did not run on .*orders, not acknowledged:/);
    assert.match(r.stdout, /postgres {2}DROP INDEX: DROP INDEX "pf_idx_orders_amount"/);
    assert.match(r.stdout, /postgres {2}ALTER TABLE: ALTER TABLE orders ALTER COLUMN amount SET DEFAULT 7/);

    const json = await w.run(['drift', 'orders-amount', '--json']);
    assert.equal(json.code, 1);
    const doc = json.json();
    assert.equal(doc.code, 'PF_DRIFT');
    assert.equal(doc.blocking, true);
    const m = doc.migrations[0];
    assert.deepEqual(
      m.findings.map((f: { object: string; actual: string }) => [f.object, f.actual]),
      [
        ['new column', 'DEFAULT 7'],
        ['index', 'missing'],
      ],
    );
    assert.deepEqual(
      m.recordedDdl.map((d: { commandTag: string; role: string }) => [d.commandTag, d.role]),
      [
        ['DROP INDEX', 'postgres'],
        ['ALTER TABLE', 'postgres'],
      ],
    );

    // status shows it too, in text and --json, and what a controller would do is held by it.
    const status = await w.run(['status', '--json']);
    assert.equal(status.code, EXIT.ok, status.stderr);
    assert.equal(status.json().migrations[0].drift.blocking, true);
    const text = await w.run(['status']);
    assert.match(text.stdout, /drift[\s\S]*✗ index "pf_idx_orders_amount": missing/);
    assert.match(text.stdout, /the controller refuses to advance \(PF_DRIFT\)/);
  });

  it('--ack acknowledges the recorded DDL; once repaired, exit 0 again', async () => {
    await suite.knex.raw('ALTER TABLE orders ALTER COLUMN amount DROP DEFAULT');
    await suite.knex.raw('CREATE INDEX CONCURRENTLY ?? ON orders (amount)', [index]);
    const still = await w.run(['drift', 'orders-amount']);
    assert.equal(still.code, 1, 'the catalog matches, the DDL is not acknowledged yet');
    assert.match(still.stdout, /matches the catalog/);
    const ack = await w.run(['drift', 'orders-amount', '--ack']);
    assert.equal(ack.code, EXIT.ok, ack.stdout + ack.stderr);
    assert.match(ack.stderr, /acknowledged 4 recorded DDL statement\(s\)/);
    assert.equal((await w.run(['drift'])).code, EXIT.ok);
    const status = await w.run(['status']);
    assert.match(status.stdout, /drift[^\n]*matches the catalog/);
  });

  it('exit 2 for an id the config does not declare, 5 when Postgres cannot be reached', async () => {
    const unknown = await w.run(['drift', 'nope']);
    assert.equal(unknown.code, EXIT.usage, unknown.stderr);
    const down = await w.run(['drift'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' } });
    assert.equal(down.code, EXIT.unavailable, down.stderr);
  });
});
