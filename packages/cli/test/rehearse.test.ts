import assert from 'node:assert/strict';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createRoles, type Roles } from './roles.js';
import { workdir, type Workdir } from './support.js';

/**
 * `phaseflag rehearse` against a source that looks like production: 120,000 orders with an index, a foreign key
 * to customers, a check and a trigger, read through a role that can only SELECT. Each run copies a sample into
 * an embedded PostgreSQL (small --rows, short windows, to keep the suite quick) and runs every phase there.
 */
describe('phaseflag rehearse: the migration on a copy, under traffic, with a report', function () {
  this.timeout(240_000);
  let suite: Suite;
  let roles: Roles;
  let w: Workdir;
  const quick = [
    '--sample',
    '3000',
    '--rows',
    '12000',
    '--baseline-s',
    '1',
    '--phase-min-s',
    '1',
    '--stats-window-s',
    '1',
  ];

  const sourceState = async () => ({
    orders: (await suite.knex.raw('SELECT count(*)::int AS n, sum(amount_cents)::bigint AS s FROM orders')).rows[0],
    customers: (await suite.knex.raw('SELECT count(*)::int AS n FROM customers')).rows[0],
    catalog: (
      await suite.knex.raw(
        `SELECT c.relname, c.relkind, (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int AS cols,
                (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid)::int AS triggers,
                (SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid)::int AS constraints
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN (?, ?) ORDER BY 1`,
        [suite.schema, suite.stateSchema],
      )
    ).rows,
  });

  before(async () => {
    suite = await createSuiteSchema('cli rehearse');
    await suite.knex.raw(`
      CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);
      INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 5000) g;
      CREATE TABLE orders (
        id bigserial PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES customers (id),
        amount_cents integer NOT NULL CHECK (amount_cents >= 0),
        status text NOT NULL DEFAULT 'new',
        created_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO orders (customer_id, amount_cents, status)
        SELECT 1 + g % 5000, (g * 37) % 100000, CASE WHEN g % 3 = 0 THEN 'paid' ELSE 'new' END FROM generate_series(1, 120000) g;
      CREATE INDEX orders_customer_idx ON orders (customer_id, created_at);
      CREATE FUNCTION touch_status() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.status := lower(NEW.status); RETURN NEW; END $$;
      CREATE TRIGGER orders_touch BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch_status();
      ANALYZE customers; ANALYZE orders;
    `);
    roles = await createRoles(suite.knex, suite.databaseUrl, ['reader']);
    const reader = roles.names.reader!;
    await suite.knex.raw('GRANT USAGE ON SCHEMA ?? TO ??', [suite.schema, reader]);
    await suite.knex.raw('GRANT SELECT ON ALL TABLES IN SCHEMA ?? TO ??', [suite.schema, reader]);
    w = workdir(undefined, { DATABASE_URL: roles.url(reader) });
    w.writeConfig(`import { defineConfig } from '@phaseflag/cli';
export default defineConfig({
  migrations: [{
    id: 'orders-amount',
    table: '${suite.schema}.orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true },
    backfill: 'amount_cents::numeric / 100',
    reverse: '(amount * 100)::integer',
    batch: { size: 2000, targetBatchMs: 0, pauseMs: 0 },
  }, {
    id: 'orders-odd',
    table: '${suite.schema}.orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'odd_part', type: 'integer' },
    backfill: 'amount_cents / (amount_cents % 2)',
    intent: 'derive',
  }],
});
`);
  });
  after(async () => {
    w?.remove();
    await roles?.drop();
    await suite?.cleanup();
  });

  it('runs every phase on the copy through a read-only role, reports statements, locks, latencies, rows/s and the projection, and leaves the source as it was', async () => {
    const before = await sourceState();
    const r = await w.run(
      ['rehearse', 'orders-amount', ...quick, '--reads-per-s', '40', '--writes-per-s', '10', '--json'],
      {
        timeoutMs: 180_000,
      },
    );
    assert.equal(r.code, EXIT.ok, r.stderr + r.stdout);
    const report = r.json();
    assert.equal(report.ok, true);
    assert.equal(report.source.rowsEstimate, 120000);
    assert.equal(report.copy.sampledRows, 3000);
    assert.equal(report.copy.rows, 12000);
    assert.match(report.copy.method, /TABLESAMPLE BERNOULLI/);
    assert.deepEqual(
      report.copy.parents.map((p: { table: string }) => p.table),
      [`${suite.schema}.customers`],
    );
    assert.ok(report.copy.parents[0].rows > 0 && report.copy.parents[0].rows <= 5000);
    const what = report.copy.statements.map((s: { what: string }) => s.what).join('\n');
    for (const part of ['index orders_customer_idx', 'trigger orders_touch', 'foreign key', 'check', 'primary key'])
      assert.ok(what.includes(part), `${part} in\n${what}`);
    assert.equal(report.preflight.rowsChecked, 12000);
    assert.equal(report.preflight.failures, 0);
    assert.deepEqual(
      report.phases.map((p: { phase: string }) => p.phase),
      ['expand', 'dual-write', 'backfill', 'verify', 'read-new', 'contract'],
    );
    const expand = report.phases[0];
    assert.ok(
      expand.statements.some(
        (s: { sql: string; lock: string }) => /ADD COLUMN/.test(s.sql) && s.lock === 'ACCESS EXCLUSIVE',
      ),
    );
    assert.ok(
      expand.statements.some(
        (s: { sql: string; lock: string }) => /CONCURRENTLY/.test(s.sql) && s.lock === 'SHARE UPDATE EXCLUSIVE',
      ),
    );
    const dual = report.phases[1];
    assert.ok(dual.statements.some((s: { sql: string }) => /CREATE TRIGGER/.test(s.sql)));
    for (const p of report.phases) {
      assert.ok(p.latency.requests > 0, `${p.phase} has requests`);
      assert.equal(typeof p.latency.p99Ms, 'number');
      for (const s of p.statements) assert.ok(s.heldMs >= 0 && s.lockWaitMs >= 0);
    }
    assert.ok(report.baseline.requests >= 30 && report.baseline.errors === 0, JSON.stringify(report.baseline));
    assert.equal(report.backfill.rows, 12000);
    // The traffic's writes during dual-write went through the sync trigger: those rows needed no update.
    assert.ok(report.backfill.updated <= 12000 && report.backfill.updated > 10000, String(report.backfill.updated));
    assert.ok(report.backfill.rowsPerS > 0);
    assert.equal(report.projection.sourceRows, 120000);
    assert.equal(report.projection.seconds, Math.round(120000 / report.backfill.rowsPerS));
    assert.match(report.projection.method, /linear in rows/);
    assert.deepEqual(await sourceState(), before);
  });

  it('prints the report for a person, and exits 1 when a threshold is crossed', async () => {
    const before = await sourceState();
    const r = await w.run(
      ['rehearse', 'orders-amount', ...quick, '--max-lock-ms', '0', '--max-backfill', '1ms', '--max-p99-ratio', '1000'],
      { timeoutMs: 180_000 },
    );
    assert.equal(r.code, EXIT.rehearseFailed, r.stderr + r.stdout);
    assert.match(r.stdout, /^rehearse orders-amount/m);
    // No rates given: the source's own, from pg_stat_user_tables (idle here, so the documented floor).
    assert.match(
      r.stdout,
      /pg_stat_user_tables over 1 s on the source.*idle, so a floor of 10 reads\/s and 2 writes\/s/,
    );
    assert.match(r.stdout, /^expand {2}/m);
    assert.match(r.stdout, /ACCESS EXCLUSIVE held \d+ ms, waited \d+ ms/);
    assert.match(r.stdout, /rows\/s/);
    assert.match(r.stdout, /^projection {2}backfill of 120,000 rows/m);
    assert.match(r.stdout, /^crossed {2}--max-lock-ms 0 ms/m);
    assert.match(r.stdout, /^crossed {2}--max-backfill 0\.001 s/m);
    assert.match(r.stdout, /^ok {2}--max-p99-ratio 1000/m);
    assert.match(r.stdout, /rehearsal failed/);
    assert.deepEqual(await sourceState(), before);
  });

  it('stops before dual-write when the preflight finds rows the expression cannot derive, naming them (exit 1)', async () => {
    const r = await w.run(['rehearse', 'orders-odd', ...quick, '--rows', '3000', '--json'], { timeoutMs: 120_000 });
    assert.equal(r.code, EXIT.rehearseFailed, r.stderr);
    const report = r.json();
    assert.equal(report.ok, false);
    assert.ok(report.preflight.failures > 0);
    assert.match(report.preflight.failedRows[0].error, /division by zero/);
    assert.match(report.stoppedBy, /cannot derive: dual-write would be refused \(PF_PREFLIGHT_FAILED\)/);
    assert.deepEqual(
      report.phases.map((p: { phase: string }) => p.phase),
      ['expand'],
    );
  });

  it('--help says what the source is, the exit codes, and shows an example', async () => {
    const h = await w.run(['rehearse', '--help']);
    assert.equal(h.code, EXIT.ok);
    assert.match(h.stdout, /--database-url is the SOURCE: it is only read/);
    assert.match(h.stdout, /Exit codes: 0 passed; 1 a threshold was crossed/);
    assert.match(h.stdout, /npx phaseflag rehearse orders-amount --sample 20000 --rows 200000 --max-lock-ms 200/);
  });

  it('refuses bad input with a code: unknown id, a source without the table, bad option values', async () => {
    const unknown = await w.run(['rehearse', 'nope', '--json']);
    assert.equal(unknown.code, EXIT.usage);
    assert.equal(unknown.json().error.code, 'PF_UNKNOWN_MIGRATION');
    const noTable = await w.run(['rehearse', 'orders-amount', '--json'], {
      env: { DATABASE_URL: `${suite.databaseUrl.replace(/\/[^/]*$/, '')}/postgres` },
    });
    assert.equal(noTable.code, EXIT.usage, noTable.stderr);
    assert.equal(noTable.json().error.code, 'PF_UNKNOWN_TABLE');
    for (const bad of [
      ['--sample', '0'],
      ['--rows', 'many'],
      ['--max-backfill', 'soon'],
      ['--max-p99-ratio', '-1'],
      ['--reads-per-s', 'x'],
    ]) {
      const b = await w.run(['rehearse', 'orders-amount', ...bad, '--json']);
      assert.equal(b.code, EXIT.usage, `${bad.join(' ')}: ${b.stderr}`);
      assert.equal(b.json().error.code, 'PF_USAGE_BAD_OPTION');
      assert.equal(b.json().error.value, bad[1]);
    }
  });
});
