import assert from 'node:assert/strict';
import { ATTR, SPAN, defineMigration, type MigrationInput } from '@phaseflag/core';
import type { SpanCapture, Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { resolveMigration } from '../../src/catalog/resolve.js';
import type { ExecutorContext } from '../../src/context.js';
import { applySteps, expandSteps } from '../../src/operations/steps/phase-steps.js';
import {
  syncFunctionName,
  syncInsertTriggerName,
  syncTrigger,
  syncTriggerInstalled,
  syncTriggerName,
} from '../../src/operations/steps/sync-trigger.js';
import { cents, setupSyncSuite, type SyncSuite } from '../fixtures/sync-suite.js';

/** What a plain-SQL writer gets from the trigger: both columns consistent, whichever it writes (see the fixture). */
describe('sync trigger', function () {
  let suite: Suite;
  let ctx: ExecutorContext;
  let spans: SpanCapture;
  let writer: Knex;
  let install: SyncSuite['install'];
  let row: SyncSuite['row'];

  before(async () => {
    ({ suite, ctx, spans, writer, install, row } = await setupSyncSuite('sync'));
    await install(cents);
  });
  after(async () => {
    await suite?.cleanup();
  });

  it('fills the new column when a writer inserts only the old one', async () => {
    await writer.raw('INSERT INTO orders (id, amount) VALUES (1001, 12.345)');
    assert.deepEqual(await row('orders', 1001), { id: '1001', amount: '12.345', note: null, amount_cents: '1235' });
  });

  it('recomputes the new column when a writer updates the old one', async () => {
    await writer.raw('UPDATE orders SET amount = 7.5 WHERE id = 1001');
    assert.equal((await row('orders', 1001)).amount_cents, '750');
  });

  it('fills the old column through the reverse expression when a writer inserts only the new one', async () => {
    await writer.raw('INSERT INTO orders (id, amount_cents) VALUES (1002, 999)');
    assert.equal((await row('orders', 1002)).amount, '9.9900000000000000');
  });

  it('recomputes the old column when a writer updates only the new one', async () => {
    await writer.raw('UPDATE orders SET amount_cents = 250 WHERE id = 1002');
    const r = await row('orders', 1002);
    assert.equal(Number(r.amount), 2.5);
    assert.equal(r.amount_cents, '250');
  });

  it('trusts a writer that writes both columns, even where they disagree', async () => {
    await writer.raw('INSERT INTO orders (id, amount, amount_cents) VALUES (1003, 1, 42)');
    assert.deepEqual([(await row('orders', 1003)).amount, (await row('orders', 1003)).amount_cents], ['1', '42']);
    await writer.raw('UPDATE orders SET amount = 2, amount_cents = 43 WHERE id = 1003');
    assert.deepEqual([(await row('orders', 1003)).amount, (await row('orders', 1003)).amount_cents], ['2', '43']);
  });

  it('leaves a row the backfill has not reached to the backfill on an unrelated write, and other updates alone', async () => {
    // The UPDATE trigger's WHEN clause is false for an UPDATE of `note`: no call, the row stays as it was (the
    // backfill, which compares every row with the expression, fills it).
    await writer.raw("UPDATE orders SET note = 'touched' WHERE id = 4");
    assert.equal((await row('orders', 4)).amount_cents, null);
    await writer.raw('UPDATE orders SET amount = amount WHERE id = 4');
    assert.equal((await row('orders', 4)).amount_cents, null, 'an UPDATE that changes no value syncs nothing');
    await writer.raw('UPDATE orders SET amount = 6 WHERE id = 4');
    assert.equal((await row('orders', 4)).amount_cents, '600');
    // A consistent row whose backfill inputs did not change is not recomputed: overwrite by hand to observe it.
    const r = await resolveMigration(ctx.knex, defineMigration(cents));
    await ctx.knex.raw('ALTER TABLE orders DISABLE TRIGGER ??', [syncTriggerName(r)]);
    await writer.raw('UPDATE orders SET amount_cents = 1 WHERE id = 4');
    await ctx.knex.raw('ALTER TABLE orders ENABLE TRIGGER ??', [syncTriggerName(r)]);
    await writer.raw("UPDATE orders SET note = 'again' WHERE id = 4");
    assert.equal((await row('orders', 4)).amount_cents, '1');
    // A key change may move a row out of the backfill's reach (past its range's upper key, or behind its
    // checkpoint): an unset row is filled then, a row with a value is left as it is.
    await writer.raw("UPDATE orders SET note = 'before the move' WHERE id = 5");
    assert.equal((await row('orders', 5)).amount_cents, null);
    await writer.raw('UPDATE orders SET id = 500005 WHERE id = 5');
    assert.notEqual((await row('orders', 500005)).amount_cents, null, 'filled when its key moved');
    await writer.raw('UPDATE orders SET id = 500004 WHERE id = 4');
    assert.equal((await row('orders', 500004)).amount_cents, '1', 'a row with a value keeps it');
  });

  it("syncs a value the table's own BEFORE trigger set, although the statement's SET list does not name it", async () => {
    // Why the UPDATE trigger has a WHEN clause and no `UPDATE OF`: Postgres would not fire a column-specific
    // trigger for a column only another trigger changed.
    await ctx.knex.raw(
      `CREATE FUNCTION amount_from_raw() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.amount := NEW.raw / 2; RETURN NEW; END $$`,
    );
    await ctx.knex.raw('CREATE TABLE raw_orders (id bigint PRIMARY KEY, amount numeric, raw numeric)');
    await ctx.knex.raw(
      'CREATE TRIGGER from_raw BEFORE INSERT OR UPDATE ON raw_orders FOR EACH ROW EXECUTE FUNCTION amount_from_raw()',
    );
    const input: MigrationInput = { ...cents, id: 'raw', table: 'raw_orders', reverse: null };
    let r = await resolveMigration(ctx.knex, defineMigration(input));
    await applySteps(ctx, r, expandSteps(r));
    r = await resolveMigration(ctx.knex, defineMigration(input));
    await syncTrigger.apply(ctx, r);
    await writer.raw('INSERT INTO raw_orders (id, raw) VALUES (1, 10)');
    assert.equal((await row('raw_orders', 1)).amount_cents, '500');
    await writer.raw('UPDATE raw_orders SET raw = 30 WHERE id = 1');
    assert.deepEqual(await row('raw_orders', 1), {
      id: '1',
      amount: '15.0000000000000000',
      raw: '30',
      amount_cents: '1500',
    });
  });

  it("leaves the old column alone when the backfill's own UPDATE writes the new one (no lossy round trip)", async () => {
    await writer.raw('INSERT INTO orders (id, amount) VALUES (1004, 3.14159)');
    // What the backfill runs: new := backfill(row). reverse(314) would be 3.14 and lose digits of the old value.
    await writer.raw('UPDATE orders AS t SET amount_cents = (round(t.amount * 100))::bigint WHERE id = 1004');
    assert.equal((await row('orders', 1004)).amount, '3.14159');
  });

  it('reports itself installed, re-applies without DDL, and is gone after rollback', async () => {
    const r = await resolveMigration(ctx.knex, defineMigration(cents));
    assert.equal(await syncTriggerInstalled(ctx, r), true);
    spans.reset();
    await syncTrigger.apply(ctx, r);
    assert.deepEqual(spans.byName(SPAN.ddl), []);
    await ctx.knex.raw('ALTER TABLE orders DISABLE TRIGGER ??', [syncInsertTriggerName(r)]);
    assert.equal(await syncTriggerInstalled(ctx, r), false, 'a disabled trigger does not cover writers');
    await syncTrigger.apply(ctx, r);
    assert.equal(await syncTriggerInstalled(ctx, r), true);
    const locks = spans.byName(SPAN.ddl).map((s) => s.attributes[ATTR.lockMode]);
    assert.deepEqual(locks, ['ACCESS EXCLUSIVE'], 'only the triggers are recreated; the function was right');
    // An UPDATE trigger without its WHEN clause (or with another one) is not the one phaseflag writes.
    await ctx.knex.raw(
      `DROP TRIGGER ?? ON orders; CREATE TRIGGER ?? BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION ??.??()`,
      [syncTriggerName(r), syncTriggerName(r), ctx.stateSchema, syncFunctionName(r)],
    );
    assert.equal(await syncTriggerInstalled(ctx, r), false, 'a trigger without the WHEN clause');
    await syncTrigger.apply(ctx, r);
    assert.equal(await syncTriggerInstalled(ctx, r), true);
    await syncTrigger.rollback(ctx, r);
    assert.equal(await syncTriggerInstalled(ctx, r), false);
    const fn = (await ctx.knex.raw('SELECT count(*)::int AS n FROM pg_proc WHERE proname = ?', [syncFunctionName(r)]))
      .rows[0].n;
    assert.equal(fn, 0);
    await syncTrigger.apply(ctx, r);
  });

  it('treats the new column\'s default as "not given" on insert, and fires after the table\'s own BEFORE triggers', async () => {
    await ctx.knex.raw(
      `CREATE FUNCTION normalize_amount() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.amount := abs(NEW.amount); RETURN NEW; END $$`,
    );
    await ctx.knex.raw('CREATE TABLE dflt (id bigint PRIMARY KEY, amount numeric)');
    await ctx.knex.raw(
      'CREATE TRIGGER normalize BEFORE INSERT OR UPDATE ON dflt FOR EACH ROW EXECUTE FUNCTION normalize_amount()',
    );
    const input: MigrationInput = {
      ...cents,
      id: 'dflt',
      table: 'dflt',
      newColumn: { name: 'amount_cents', type: 'bigint', default: 0 },
    };
    let r = await resolveMigration(ctx.knex, defineMigration(input));
    await applySteps(ctx, r, expandSteps(r));
    r = await resolveMigration(ctx.knex, defineMigration(input));
    await syncTrigger.apply(ctx, r);
    await writer.raw('INSERT INTO dflt (id, amount) VALUES (1, -2.5)');
    assert.deepEqual(await row('dflt', 1), { id: '1', amount: '2.5', amount_cents: '250' });
  });

  it("evaluates expressions in the schemas they were resolved in, whatever the writer's search_path", async () => {
    await ctx.knex.raw(
      `CREATE FUNCTION to_cents(numeric) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT round($1 * 100)::bigint'`,
    );
    const r = await install({ ...cents, id: 'fn', table: 'fn_orders', backfill: 'to_cents(amount)', reverse: null }, 5);
    assert.deepEqual(r.backfillInputs, ['amount']);
    assert.deepEqual(r.expressionDependencies, [`function ${suite.schema}.to_cents(numeric)`]);
    const elsewhere = suite.newKnex({ pool: { min: 0, max: 1 } });
    await elsewhere.transaction(async (trx) => {
      await trx.raw('SET LOCAL search_path TO public');
      await trx.raw('INSERT INTO ??.fn_orders (id, amount) VALUES (100, 1.01)', [suite.schema]);
    });
    assert.equal((await row('fn_orders', 100)).amount_cents, '101');
  });

  it('pins no search_path when the expressions use built-ins only (a SET clause costs on every row)', async () => {
    const r = await resolveMigration(ctx.knex, defineMigration(cents));
    const config = (await ctx.knex.raw('SELECT proconfig FROM pg_proc WHERE proname = ?', [syncFunctionName(r)]))
      .rows[0].proconfig;
    assert.equal(config, null);
    const elsewhere = suite.newKnex({ pool: { min: 0, max: 1 } });
    await elsewhere.transaction(async (trx) => {
      await trx.raw('SET LOCAL search_path TO public');
      await trx.raw('INSERT INTO ??.orders (id, amount) VALUES (2001, 0.5)', [suite.schema]);
    });
    assert.equal((await row('orders', 2001)).amount_cents, '50');
  });

  it("syncs columns whose names would shadow PL/pgSQL's own NEW and OLD", async () => {
    await ctx.knex.raw('CREATE TABLE quirky (id int PRIMARY KEY, "old" numeric, "end" text)');
    const input: MigrationInput = {
      id: 'quirky',
      table: 'quirky',
      oldColumn: 'old',
      newColumn: { name: 'new', type: 'bigint' },
      backfill: 'round("old" * 100)',
      reverse: '"new" / 100.0',
    };
    let r = await resolveMigration(ctx.knex, defineMigration(input));
    await applySteps(ctx, r, expandSteps(r));
    r = await resolveMigration(ctx.knex, defineMigration(input));
    await syncTrigger.apply(ctx, r);
    await writer.raw(`INSERT INTO quirky (id, "old", "end") VALUES (1, 1.5, 'x'), (2, NULL, 'y')`);
    await writer.raw('UPDATE quirky SET "new" = 700 WHERE id = 2');
    assert.deepEqual(
      (await writer.raw('SELECT id, "old", "new" FROM quirky ORDER BY id')).rows.map((x: Record<string, unknown>) => [
        x.id,
        Number(x.old),
        x.new,
      ]),
      [
        [1, 1.5, '150'],
        [2, 7, '700'],
      ],
    );
  });

  it('keeps working when an expression contains the text of a dollar-quote tag', async () => {
    const r = await install(
      {
        ...cents,
        id: 'tag',
        table: 'tag_orders',
        oldColumn: 'note',
        newColumn: { name: 'note_v2', type: 'text' },
        backfill: "note || '$pf_sync$'",
        reverse: null,
      },
      3,
    );
    await writer.raw("INSERT INTO tag_orders (id, note) VALUES (10, 'x')");
    assert.equal((await row('tag_orders', 10)).note_v2, 'x$pf_sync$');
    assert.equal(await syncTriggerInstalled(ctx, r), true);
  });
});
