import assert from 'node:assert/strict';
import { createSuiteSchema, ensurePgBouncer, startPgBouncer, type PgBouncer, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, ordersConfig, workdir, type Workdir } from './support.js';

describe('phaseflag CLI behind a transaction pooler', function () {
  this.timeout(120_000);
  let suite: Suite;
  let bouncer: PgBouncer;
  let w: Workdir;
  const hasColumn = async (column: string) =>
    (
      await suite.knex.raw(
        "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = 'orders' AND column_name = ?",
        [suite.schema, column],
      )
    ).rows[0].n === 1;

  before(async function () {
    const reason = ensurePgBouncer();
    if (reason) {
      console.log(`      (skipped: ${reason})`);
      this.skip();
    }
    suite = await createSuiteSchema('cli pooler');
    bouncer = await startPgBouncer({ target: suite.databaseUrl });
    // The service's URL, through PgBouncer in transaction mode; the table is schema-qualified in the config.
    w = workdir(suite, { DATABASE_URL: bouncer.url });
    w.writeConfig(ordersConfig(suite.schema));
    await createOrders(suite, 200);
  });
  after(async () => {
    w?.remove();
    await bouncer?.stop();
    await suite?.cleanup();
  });

  it('refuses a migration step through the pooler without a direct URL: PF_TRANSACTION_POOLER, its hint, exit 2', async () => {
    const r = await w.run(['expand', 'orders-amount']);
    assert.equal(r.code, EXIT.usage, r.stderr);
    assert.match(r.stderr, /^PF_TRANSACTION_POOLER: Cannot .* through a transaction pooler \(127\.0\.0\.1:\d+\/test\)/);
    assert.match(r.stderr, /hint: Set `directUrl` \(or PHASEFLAG_DIRECT_URL \/ --direct-url in the CLI\)/);
    assert.equal(await hasColumn('amount'), false, 'nothing changed');

    const json = await w.run(['--json', 'expand', 'orders-amount']);
    assert.equal(json.code, EXIT.usage);
    assert.equal(json.json().error.code, 'PF_TRANSACTION_POOLER');
  });

  it('checks the direct URL too (a pooler given as direct is refused) and never prints its password', async () => {
    const withPassword = (url: string) => {
      const u = new URL(url);
      u.password = 's3cret-pw';
      return u.toString();
    };
    const pooled = await w.run(['--json', 'expand', 'orders-amount'], {
      env: { DATABASE_URL: withPassword(bouncer.url), PHASEFLAG_DIRECT_URL: withPassword(bouncer.url) },
    });
    assert.equal(pooled.code, EXIT.usage, pooled.stderr);
    assert.equal(pooled.json().error.code, 'PF_TRANSACTION_POOLER');
    const unreachable = await w.run(['expand', 'orders-amount'], {
      env: { PHASEFLAG_DIRECT_URL: 'postgres://app:s3cret-pw@127.0.0.1:1/test' },
    });
    assert.equal(unreachable.code, EXIT.unavailable, unreachable.stderr);
    for (const r of [pooled, unreachable]) assert.ok(!`${r.stdout}${r.stderr}`.includes('s3cret-pw'), r.stderr);
    assert.equal(await hasColumn('amount'), false);
  });

  it('works with PHASEFLAG_DIRECT_URL, --direct-url or database.directUrl, while reads go through the pooler', async () => {
    const viaEnv = await w.run(['expand', 'orders-amount'], { env: { PHASEFLAG_DIRECT_URL: suite.databaseUrl } });
    assert.equal(viaEnv.code, EXIT.ok, viaEnv.stderr);
    assert.equal(await hasColumn('amount'), true);

    const viaFlag = await w.run(['dual-write', 'orders-amount', '--direct-url', suite.databaseUrl]);
    assert.equal(viaFlag.code, EXIT.ok, viaFlag.stderr);

    w.writeConfig(
      ordersConfig(suite.schema).replace(
        'migrations: [{',
        `database: { directUrl: ${JSON.stringify(suite.databaseUrl)} },\n  migrations: [{`,
      ),
    );
    const viaConfig = await w.run(['backfill', 'orders-amount']);
    assert.equal(viaConfig.code, EXIT.ok, viaConfig.stderr);
    w.writeConfig(ordersConfig(suite.schema));

    // Read-only commands need no session: history runs through the pooler alone.
    const history = await w.run(['--json', 'history', 'orders-amount']);
    assert.equal(history.code, EXIT.ok, history.stderr);
    const phases = (history.json().events as { toPhase: string | null }[]).map((e) => e.toPhase).filter(Boolean);
    assert.deepEqual(phases.slice(0, 2), ['expanded', 'dual-write']);
  });
});
