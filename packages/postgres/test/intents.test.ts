import assert from 'node:assert/strict';
import { defineMigration, StaticFlagSource, type MigrationInput } from '@phaseflag/core';
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
    s = await setupIntentsSuite('intents');
    ({ suite, pf, toReadNew, columns } = s);
  });
  after(async () => {
    await s?.close();
  });

  const rejects = (p: Promise<unknown>, code: string, message?: RegExp) =>
    assert.rejects(p, (e: { code?: string; message?: string }) => {
      assert.equal(e.code, code, e.message);
      if (message) assert.match(e.message ?? '', message);
      return true;
    });

  describe('derive: email → email_lower = lower(email)', () => {
    const users = (id: string, table: string): MigrationInput => ({
      id,
      table,
      oldColumn: 'email',
      intent: 'derive',
      newColumn: { name: 'email_lower', type: 'text', nullable: false, index: true },
      backfill: 'lower(email)',
      batch,
      ddl,
    });

    before(async () => {
      await suite.knex.raw('CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL)');
      await suite.knex.raw(
        "INSERT INTO users (email) SELECT 'User' || g || '@Example.COM' FROM generate_series(1, 3000) AS g",
      );
    });

    it('contract keeps the sync trigger: a plain-SQL write of the source after contract re-derives the column', async () => {
      const h = await toReadNew(users('users-email', 'users'));
      await rejects(
        h.contract({ confirm: true, dropOldColumn: true }),
        'PF_DERIVED_SOURCE_KEPT',
        /email_lower.*derived from "email"/,
      );
      assert.equal((await internalsOf(pf).store.get('users-email'))!.phase, 'read-new', 'the refusal changed nothing');
      await h.contract({ confirm: true });
      assert.equal((await internalsOf(pf).store.get('users-email'))!.phase, 'contracted');
      assert.deepEqual(await columns('users'), ['id', 'email', 'email_lower'], 'the source column is untouched');
      const source = (
        await suite.knex.raw(
          "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'",
        )
      ).rows[0];
      assert.equal(source.attnotnull, true, 'the source keeps its NOT NULL');
      const nn = (
        await suite.knex.raw(
          "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email_lower'",
        )
      ).rows[0];
      assert.equal(nn.attnotnull, true, 'the derived column got its NOT NULL');

      // The application's own SQL, after contract: they never drift.
      await suite.knex.raw("UPDATE users SET email = 'Changed@Example.COM' WHERE id = 7");
      await suite.knex.raw("INSERT INTO users (id, email) VALUES (100000, 'New@Example.COM')");
      const rows = (
        await suite.knex.raw('SELECT id, email, email_lower FROM users WHERE id IN (7, 100000) ORDER BY id')
      ).rows;
      assert.deepEqual(
        rows.map((r: { email_lower: string }) => r.email_lower),
        ['changed@example.com', 'new@example.com'],
      );
      assert.equal(rows[0].email, 'Changed@Example.COM', 'the source keeps what the writer wrote');
      const drift = (
        await suite.knex.raw('SELECT count(*)::int AS n FROM users WHERE email_lower IS DISTINCT FROM lower(email)')
      ).rows[0].n;
      assert.equal(drift, 0);
    });

    it('the router reads it under its own name in every phase and keeps writing the source after contract', async () => {
      const h = pf.migration(defineMigration(users('users-email', 'users')));
      const router = await h.router(new StaticFlagSource({ 'users-email.read-new': true }), { heartbeatMs: 0 });
      try {
        const d = router.decide();
        assert.equal(d.read, 'new');
        assert.equal(d.writeOld, true, 'writes keep going to the source');
        const [row] = await suite.knex('users').select('id', router.select()).where({ id: 7 });
        assert.deepEqual(row, { id: '7', email_lower: 'changed@example.com' });
        const values = router.row({ email: 'Router@Example.COM' });
        assert.ok('email' in values);
        const [inserted] = await suite.knex('users').insert(values).returning(['email', 'email_lower']);
        assert.deepEqual(inserted, { email: 'Router@Example.COM', email_lower: 'router@example.com' });
      } finally {
        await router.close();
      }
    });

    it('before the switch, a read of the derived column under its own name means the same (derived in SQL)', async () => {
      await suite.knex.raw('CREATE TABLE members (id bigserial PRIMARY KEY, email text NOT NULL)');
      await suite.knex.raw("INSERT INTO members (email) VALUES ('A@B.C')");
      const h = pf.migration(defineMigration(users('members-email', 'members')));
      await h.expand();
      const router = await h.router(new StaticFlagSource({}), { heartbeatMs: 0 });
      try {
        const [row] = await suite.knex('members').select(router.select());
        assert.deepEqual(row, { email_lower: 'a@b.c' });
      } finally {
        await router.close();
      }
      await h.rollback();
      assert.deepEqual(await columns('members'), ['id', 'email'], 'rollback still removes a derived column');
    });

    it('is validated: derive needs a source and a backfill expression, and has no reverse', () => {
      const base = { id: 'x', table: 't', newColumn: { name: 'b', type: 'text' } };
      assert.throws(() => defineMigration({ ...base, intent: 'derive', backfill: 'lower(a)' }), /names no oldColumn/);
      assert.throws(() => defineMigration({ ...base, intent: 'derive', oldColumn: 'a' }), /names no backfill/);
      assert.throws(
        () => defineMigration({ ...base, intent: 'derive', oldColumn: 'a', backfill: 'lower(a)', reverse: 'b' }),
        /reverse/,
      );
      assert.equal(defineMigration({ ...base, oldColumn: 'a', backfill: 'lower(a)' }).intent, 'replace');
    });
  });

  describe('ship a brand-new column: no old column, no backfill', () => {
    it('walks to contracted with its constant default (no rewrite), its index built concurrently and NOT NULL', async () => {
      await suite.knex.raw('CREATE TABLE accounts (id bigserial PRIMARY KEY, name text)');
      await suite.knex.raw("INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 5000) AS g");
      const filenode = (await suite.knex.raw("SELECT pg_relation_filenode('accounts') AS f")).rows[0].f;
      const m = defineMigration({
        id: 'accounts-tier',
        table: 'accounts',
        newColumn: { name: 'tier', type: 'text', nullable: false, default: 'basic', index: true },
        batch,
        ddl,
      });
      const plan = await planMigration(internalsOf(pf).ctx, m);
      assert.equal(plan.intent, 'replace');
      assert.equal(plan.oldColumnDefault, null);
      const h = await toReadNew({
        id: 'accounts-tier',
        table: 'accounts',
        newColumn: { name: 'tier', type: 'text', nullable: false, default: 'basic', index: true },
        batch,
        ddl,
      });
      assert.equal(
        (await suite.knex.raw("SELECT pg_relation_filenode('accounts') AS f")).rows[0].f,
        filenode,
        'ADD COLUMN with a constant default rewrote nothing',
      );
      await h.contract({ confirm: true });
      const row = (await internalsOf(pf).store.get('accounts-tier'))!;
      assert.equal(row.phase, 'contracted');
      const col = (
        await suite.knex.raw(
          "SELECT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS def FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = 'accounts'::regclass AND a.attname = 'tier'",
        )
      ).rows[0];
      assert.deepEqual(col, { attnotnull: true, def: "'basic'::text" });
      const idx = (
        await suite.knex.raw(
          "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'accounts'::regclass AND c.relname = 'pf_idx_accounts_tier'",
        )
      ).rows;
      assert.deepEqual(idx, [{ indisvalid: true }]);
      const helpers = (
        await suite.knex.raw(
          "SELECT conname FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND contype = 'c'",
        )
      ).rows;
      assert.deepEqual(helpers, [], 'the NOT NULL helper check is gone');
      const [inserted] = await suite.knex('accounts').insert({ name: 'new' }).returning('tier');
      assert.equal(inserted.tier, 'basic');
      await assert.rejects(suite.knex('accounts').insert({ name: 'bad', tier: null }), /null value in column "tier"/);
      const nulls = (await suite.knex.raw('SELECT count(*)::int AS n FROM accounts WHERE tier IS NULL')).rows[0].n;
      assert.equal(nulls, 0);
    });
  });
});
