import assert from 'node:assert/strict';
import { defineMigration, StaticFlagSource } from '@phaseflag/core';
import { Phaseflag, type KnexRouter } from '@phaseflag/postgres';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, workdir, type Workdir } from './support.js';

/** `phaseflag status` shows shadow reads per instance (text and --json); read-new is refused naming the mismatch. */
describe('phaseflag CLI: shadow reads in status, read-new refused, repair', function () {
  this.timeout(180_000);
  let suite: Suite;
  let w: Workdir;
  let pf: Phaseflag;
  let router: KnexRouter;
  const declaration = (schema: string) => ({
    id: 'orders-amount',
    table: `${schema}.orders`,
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)' },
    backfill: 'amount_cents::numeric / 100',
    shadow: { minCompared: 50 },
  });

  before(async () => {
    suite = await createSuiteSchema('cli shadow');
    w = workdir(suite);
    await createOrders(suite, 100);
    w.writeConfig(
      `import { defineConfig } from '@phaseflag/cli';\nexport default defineConfig({ migrations: [${JSON.stringify(declaration(suite.schema))}] });\n`,
    );
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, graceMs: 0 });
    await pf.install();
    const h = pf.migration(defineMigration(declaration(suite.schema)));
    await h.expand();
    await h.startDualWrite();
    await h.backfill();
    await h.verify();
    const flags = new StaticFlagSource({ 'orders-amount.shadow': true });
    router = await h.router(flags, { instanceId: 'svc-1', heartbeatMs: 0 });
  });
  after(async () => {
    await router?.close();
    await pf?.close();
    w?.remove();
    await suite?.cleanup();
  });

  const read = () => suite.knex('orders').select('id', router.select()).where('id', '<=', 30);

  it('lists compared and mismatched rows per instance, the mismatch and the verdict; read-new is refused (exit 3)', async () => {
    await read();
    await suite.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx.raw('UPDATE orders SET amount = 1 WHERE id = 7');
    });
    await read();
    await router.heartbeat();

    const json = await w.run(['status', 'orders-amount', '--json']);
    assert.equal(json.code, EXIT.ok, json.stderr);
    const s = json.json().migrations[0].shadow;
    assert.equal(s.flag.name, 'orders-amount.shadow');
    assert.deepEqual([s.active, s.compared, s.mismatched, s.minCompared, s.readNewAllowed], [true, 60, 1, 50, false]);
    assert.deepEqual(
      s.instances.map((i: { instanceId: string; compared: number; mismatched: number }) => [
        i.instanceId,
        i.compared,
        i.mismatched,
      ]),
      [['svc-1', 60, 1]],
    );
    assert.deepEqual([s.mismatches[0].key, s.mismatches[0].old, s.mismatches[0].new], [[7], '49', '1.00']);
    assert.match(s.reason, /key \[7\], old value "49", new value "1\.00"/);

    const text = await w.run(['status', 'orders-amount']);
    assert.equal(text.code, EXIT.ok, text.stderr);
    assert.match(text.stdout, /shadow reads/);
    assert.match(text.stdout, /60 compared, 1 mismatched/);
    assert.match(text.stdout, /key \[7\] {2}old "49" {2}new "1\.00"/);
    assert.match(text.stdout, /svc-1/);

    const refused = await w.run(['read-new', 'orders-amount']);
    assert.equal(refused.code, EXIT.refused, refused.stderr);
    assert.match(refused.stderr, /key \[7\]/);
  });

  it('repair re-derives the row and starts a new count; status shows it empty', async () => {
    const repaired = await w.run(['repair', 'orders-amount']);
    assert.equal(repaired.code, EXIT.ok, repaired.stderr);
    const s = (await w.run(['status', 'orders-amount', '--json'])).json().migrations[0].shadow;
    assert.deepEqual([s.active, s.compared, s.mismatched], [true, 0, 0]);
  });
});
