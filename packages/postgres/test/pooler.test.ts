import assert from 'node:assert/strict';
import { ConfigError, defineMigration, isPhaseflagError, StaticFlagSource, type Migration } from '@phaseflag/core';
import { amountInput, createAmountTable, startLoad, startPgBouncer, waitFor, type LoadOp } from '@phaseflag/testkit';
import knexFactory, { type Knex } from 'knex';
import { Phaseflag, type KnexRouter, type MigrationHandle } from '../src/index.js';
import { advisoryKey, advisoryLockHolder, detectTransactionPooler, internalsOf } from '../src/internal.js';
import { usePoolerSuite } from './fixtures/pooler-suite.js';

const FLAGS = (id: string) =>
  new StaticFlagSource({
    [`${id}.dual-write`]: true,
    [`${id}.backfill`]: true,
    [`${id}.read-new`]: true,
    [`${id}.contract`]: true,
  });

describe('behind a transaction pooler (PgBouncer)', function () {
  this.timeout(180_000);
  const t = usePoolerSuite('pooler');
  const migration = (id: string, table: string): Migration =>
    defineMigration(amountInput(id, table, { table: { schema: t.suite.schema, name: table } }));
  const columnExists = async (table: string, column: string) =>
    (
      await t.suite.knex.raw(
        'SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?',
        [t.suite.schema, table, column],
      )
    ).rows[0].n === 1;

  it('tells a transaction pooler from a direct connection and a session pooler by behaviour', async () => {
    assert.equal(await detectTransactionPooler(t.suite.knex), false, 'direct');
    assert.equal(await detectTransactionPooler(t.pooled()), true, 'PgBouncer in transaction mode');
    const session = await startPgBouncer({ target: t.suite.databaseUrl, poolMode: 'session', poolSize: 4 });
    const viaSession = knexFactory({ client: 'pg', connection: session.url, pool: { min: 0, max: 2 } });
    try {
      assert.equal(await detectTransactionPooler(viaSession), false, 'PgBouncer in session mode');
      // Session pooling keeps a client on one server connection: the operator side works through it as directly.
      const table = 'orders_session';
      await createAmountTable(t.suite.knex, table, 50);
      const { pf } = t.engine({ knex: viaSession });
      const decision = await pf.migration(migration('session', table)).expand();
      assert.equal(decision.to, 'expanded');
      assert.equal(await columnExists(table, 'amount'), true);
      await pf.close();
    } finally {
      await viaSession.destroy();
      await session.stop();
    }
  });

  it('takes directUrl or direct (not both), and closes only the knex it built from directUrl', async () => {
    const invalid = (error: unknown) => isPhaseflagError(error, 'PF_INVALID_OPTIONS');
    const secret = 'postgres://app:s3cret-pw@db.example:5432/app';
    assert.throws(
      () => new Phaseflag({ knex: t.suite.knex, directUrl: secret, direct: t.suite.knex }),
      (e) => {
        assert.ok(invalid(e));
        assert.doesNotMatch(JSON.stringify((e as { value: unknown }).value), /s3cret-pw/, 'the password stays out');
        return true;
      },
    );
    assert.throws(() => new Phaseflag({ knex: t.suite.knex, directUrl: '' }), invalid);
    assert.throws(() => new Phaseflag({ knex: t.suite.knex, direct: {} as Knex }), invalid);

    const built = new Phaseflag({ knex: t.pooled(), directUrl: t.suite.databaseUrl, stateSchema: t.suite.stateSchema });
    assert.equal((await built.direct.raw('SELECT 1 AS one')).rows[0].one, 1);
    assert.equal((await built.stateStore()).installed, true);
    await built.close();
    await assert.rejects(built.direct.raw('SELECT 1'), 'the knex built from directUrl is destroyed');

    const own = knexFactory({ client: 'pg', connection: t.suite.databaseUrl, pool: { min: 0, max: 1 } });
    const given = new Phaseflag({ knex: t.pooled(), direct: own, stateSchema: t.suite.stateSchema });
    assert.equal(given.direct, own);
    await given.close();
    assert.equal((await own.raw('SELECT 1 AS one')).rows[0].one, 1, 'a given knex is left to its owner');
    await own.destroy();
  });

  it('refuses the operator side without a direct URL (PF_TRANSACTION_POOLER) before it changes or locks anything', async () => {
    const table = 'orders_refused';
    await createAmountTable(t.suite.knex, table, 100);
    const m = migration('refused', table);
    const { pf } = t.engine({ knex: t.pooled() });
    const target = `127.0.0.1:${t.bouncer.port}${new URL(t.bouncer.url).pathname}`;
    const refused = (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.code, 'PF_TRANSACTION_POOLER', 'never a misleading PF_MIGRATION_CONFLICT');
      assert.equal(error.value, target, 'the pooler it went through, without credentials');
      assert.match(error.hint, /`directUrl`.*PHASEFLAG_DIRECT_URL.*--direct-url/);
      return true;
    };

    const fresh = t.engine({ knex: t.pooled(), stateSchema: `${t.suite.stateSchema}_fresh` }).pf;
    await assert.rejects(fresh.install(), refused);
    const created = await t.suite.knex.raw('SELECT 1 FROM pg_namespace WHERE nspname = ?', [
      `${t.suite.stateSchema}_fresh`,
    ]);
    assert.equal(created.rows.length, 0, 'install created nothing');

    const handle = pf.migration(m);
    await assert.rejects(handle.expand(), refused);
    await assert.rejects(handle.backfill(), refused);
    await assert.rejects(pf.controller(m, { flags: FLAGS('refused'), intervalMs: 100 }).start(), refused);
    assert.equal(await columnExists(table, 'amount'), false, 'the table is unchanged');
    assert.equal(await internalsOf(pf).store.get('refused'), null, 'nothing was registered');
    for (const [purpose, name] of [
      ['step', 'refused'],
      ['backfill', 'refused'],
      ['leader', 'refused'],
    ] as const) {
      const key = advisoryKey(purpose, `${t.suite.stateSchema}:${name}`);
      assert.equal(await advisoryLockHolder(t.suite.knex, key), null, `no ${purpose} lock was left behind`);
    }
    // Reading works through the pooler: status needs no session.
    assert.equal((await pf.stateStore()).installed, true);
  });

  it('runs the whole life cycle with the operator on directUrl and two services polling through PgBouncer under load', async () => {
    const table = 'orders_life';
    const qualified = `${t.suite.schema}.${table}`;
    const rows = 5000;
    await createAmountTable(t.suite.knex, table, rows);
    const m = migration('life', table);
    const flags = FLAGS('life');
    const services: { knex: Knex; logs: { level: string; message: string }[]; router: KnexRouter }[] = [];
    for (const n of [1, 2]) {
      const knex = t.pooled(4);
      const { pf, logs } = t.engine({ knex });
      const router = await pf.migration(m).router(flags, { heartbeatMs: 100, instanceId: `svc-${n}` });
      services.push({ knex, logs, router });
    }
    // Services poll every 100 ms: a grace of 1 s lets both apply contracted before the old column goes.
    const { pf: operator } = t.engine({ knex: t.pooled(2), directUrl: t.suite.databaseUrl, graceMs: 1000 });
    assert.notEqual(operator.direct, operator.knex);
    const op = operator.migration(m);

    let inserted = 0;
    const loads = services.map((s) =>
      startLoad({ knex: s.knex, concurrency: 2, ops: traffic(s.router, qualified, rows, () => inserted++) }),
    );
    const applied = (phase: string) => followed(op, services, phase);
    await op.expand();
    await applied('expanded');
    await op.startDualWrite();
    await applied('dual-write');
    await op.backfill();
    await applied('backfilled');
    await op.verify();
    await applied('verified');
    await op.readNew();
    await applied('read-new');
    await op.contract({ confirm: true, dropOldColumn: true });
    await applied('contracted');
    const reports = await Promise.all(loads.map((l) => l.stop()));

    for (const r of reports) {
      assert.equal(r.errors, 0, JSON.stringify(r.errorSamples.slice(0, 3)));
      assert.ok(r.ops > 20, `traffic ran throughout (${r.ops} ops)`);
    }
    const count = await t.suite.knex.raw('SELECT count(*)::int AS n, count(amount)::int AS a FROM ??', [qualified]);
    assert.deepEqual(count.rows[0], { n: rows + inserted, a: rows + inserted }, 'no row lost, every row has amount');
    assert.equal(await columnExists(table, 'amount_cents'), false);
    const transitions = (await op.status()).events.filter((e) => e.kind === 'transition').map((e) => e.toPhase);
    assert.deepEqual(transitions, [
      'expanded',
      'dual-write',
      'backfilling',
      'backfilled',
      'verified',
      'read-new',
      'contracted',
    ]);
    for (const s of services) {
      const said = s.logs.filter((l) => /transaction pooler/.test(l.message));
      assert.deepEqual(
        said.map((l) => [l.level, l.message]),
        [
          [
            'info',
            'phaseflag: connected through a transaction pooler (LISTEN/NOTIFY unavailable): polling the state store every 100 ms',
          ],
        ],
        'said once',
      );
      assert.deepEqual(
        s.logs.filter((l) => l.level !== 'info'),
        [],
        'no warning or error',
      );
    }
  });
});

/** Waits until both services apply `phase`, and their heartbeats (as the operator reads them) say so. */
async function followed(
  op: MigrationHandle,
  services: readonly { router: KnexRouter }[],
  phase: string,
): Promise<void> {
  await waitFor(() => services.every((s) => s.router.core.currentPhase === phase), {
    timeoutMs: 10_000,
    description: `both services to apply ${phase}`,
  });
  await waitFor(
    async () => {
      const instances = (await op.status()).instances.filter((i) => i.live);
      // The first heartbeat in read-new still counts the old-column reads made just before the switch (readsOld
      // covers the interval since the last one): contract's guard waits for one that does not.
      return (
        instances.length === services.length &&
        instances.every((i) => i.phase === phase && (phase !== 'read-new' || !i.readsOld))
      );
    },
    { timeoutMs: 10_000, description: `both heartbeats to report ${phase}` },
  );
}

/** Reads under the logical name, inserts and updates through the router, counting the inserts that succeeded. */
function traffic(router: KnexRouter, table: string, maxId: number, onInsert: () => void): LoadOp[] {
  const rand = (n: number) => 1 + Math.floor(Math.random() * n);
  return [
    {
      name: 'read',
      weight: 3,
      run: async (_i, db: Knex) => {
        await db(table)
          .select('id', router.select({ userId: String(rand(50)) }))
          .where('id', rand(maxId));
      },
    },
    {
      name: 'insert',
      weight: 1,
      run: async (_i, db: Knex) => {
        await db(table).insert(router.row({ amount_cents: rand(99_999) }));
        onInsert();
      },
    },
    {
      name: 'update',
      weight: 2,
      run: async (_i, db: Knex) => {
        await db(table)
          .update(router.row({ amount_cents: rand(99_999) }))
          .where('id', rand(maxId));
      },
    },
  ];
}
