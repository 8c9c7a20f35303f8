import assert from 'node:assert/strict';
import { defineMigration, type MigrationInput } from '@phaseflag/core';
import type { Suite } from '@phaseflag/testkit';
import type { Phaseflag } from '../src/index.js';
import { internalsOf, planMigration } from '../src/internal.js';
import { batch, ddl, setupIntentsSuite, type IntentsSuite } from './fixtures/intents-suite.js';

describe('two intents: a derived column lives beside its source, a replacement takes its place', function () {
  this.timeout(120_000);
  let s: IntentsSuite | undefined;
  let suite: Suite;
  let pf: Phaseflag;
  let toReadNew: IntentsSuite['toReadNew'];
  let columns: IntentsSuite['columns'];

  before(async () => {
    s = await setupIntentsSuite('contract default');
    ({ suite, pf, toReadNew, columns } = s);
  });
  after(async () => {
    await s?.close();
  });

  describe("the old column's DEFAULT at contract", () => {
    it("is carried over through the backfill expression: after contract with drop, an INSERT without the column gets 'FREE'", async () => {
      await suite.knex.raw("CREATE TABLE subs (id bigserial PRIMARY KEY, plan_id text NOT NULL DEFAULT 'free')");
      await suite.knex.raw(
        "INSERT INTO subs (plan_id) SELECT CASE WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END FROM generate_series(1, 3000) AS g",
      );
      const input: MigrationInput = {
        id: 'subs-plan',
        table: 'subs',
        oldColumn: 'plan_id',
        newColumn: { name: 'plan_code', type: 'text', nullable: false },
        backfill: 'upper(plan_id)',
        batch,
        ddl,
      };
      const plan = await planMigration(internalsOf(pf).ctx, defineMigration(input), { dropOldColumn: true });
      assert.deepEqual(plan.oldColumnDefault, {
        sql: "'free'::text",
        constant: true,
        carried: "'FREE'::text",
        why: null,
      });
      const contract = plan.phases.find((p) => p.phase === 'contract')!;
      assert.ok(
        contract.statements.some((s) => /SET DEFAULT 'FREE'::text/.test(s.sql)),
        'plan shows the SET DEFAULT',
      );
      const h = await toReadNew(input);
      // While the trigger lives, an old writer's INSERT is still derived, not given the carried default.
      await suite.knex.raw("INSERT INTO subs (plan_id) VALUES ('pro')");
      await h.contract({ confirm: true, dropOldColumn: true });
      assert.deepEqual(await columns('subs'), ['id', 'plan_code']);
      const [row] = await suite.knex('subs').insert({}).returning('plan_code');
      assert.equal(row.plan_code, 'FREE');
      const wrong = (await suite.knex.raw("SELECT count(*)::int AS n FROM subs WHERE plan_code NOT IN ('FREE', 'PRO')"))
        .rows[0].n;
      assert.equal(wrong, 0);
    });

    it('a declared default wins over the carried one', async () => {
      await suite.knex.raw("CREATE TABLE subs2 (id bigserial PRIMARY KEY, plan_id text NOT NULL DEFAULT 'free')");
      const m = defineMigration({
        id: 'subs2-plan',
        table: 'subs2',
        oldColumn: 'plan_id',
        newColumn: { name: 'plan_code', type: 'text', default: 'TRIAL' },
        backfill: 'upper(plan_id)',
        batch,
        ddl,
      });
      const plan = await planMigration(internalsOf(pf).ctx, m);
      assert.equal(plan.oldColumnDefault?.carried, null);
      assert.match(plan.oldColumnDefault?.why ?? '', /declares its own default/);
    });

    it('a default that is not a constant (nextval) refuses contract with drop, naming it and what to declare', async () => {
      await suite.knex.raw('CREATE SEQUENCE legacy_seq');
      await suite.knex.raw(
        "CREATE TABLE tickets (id bigserial PRIMARY KEY, legacy_no integer NOT NULL DEFAULT nextval('legacy_seq'))",
      );
      await suite.knex.raw('INSERT INTO tickets SELECT FROM generate_series(1, 500)');
      const input: MigrationInput = {
        id: 'tickets-no',
        table: 'tickets',
        oldColumn: 'legacy_no',
        newColumn: { name: 'legacy_no_big', type: 'bigint' },
        backfill: 'legacy_no::bigint',
        batch,
        ddl,
      };
      const plan = await planMigration(internalsOf(pf).ctx, defineMigration(input), { dropOldColumn: true });
      assert.equal(plan.oldColumnDefault?.constant, false);
      assert.equal(plan.oldColumnDefault?.carried, null);
      assert.ok(plan.phases.find((p) => p.phase === 'contract')!.notes.some((n) => /PF_DEFAULT_NOT_CARRIED/.test(n)));
      const h = await toReadNew(input);
      await assert.rejects(
        h.contract({ confirm: true, dropOldColumn: true }),
        (e: { code?: string; message?: string; hint?: string }) => {
          assert.equal(e.code, 'PF_DEFAULT_NOT_CARRIED');
          assert.match(e.message ?? '', /nextval\('legacy_seq'::regclass\)/);
          assert.match(e.hint ?? '', /newColumn\.default|SET DEFAULT/);
          return true;
        },
      );
      assert.equal((await internalsOf(pf).store.get('tickets-no'))!.phase, 'read-new', 'nothing changed');
      assert.deepEqual(await columns('tickets'), ['id', 'legacy_no', 'legacy_no_big']);
      // Kept (the column is nullable): contract goes ahead, the old column keeps its default.
      await h.contract({ confirm: true });
      assert.equal((await internalsOf(pf).store.get('tickets-no'))!.phase, 'contracted');
    });
  });
});
