import assert from 'node:assert/strict';
import { createSuiteSchema, seed, seedTable, waitFor, type Suite } from '../src/index.js';

describe('seedTable', function () {
  let suite: Suite;
  before(async function () {
    suite = await createSuiteSchema('seed');
    await suite.knex.raw(
      'CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, total_cents int, created_at timestamptz DEFAULT now())',
    );
  });
  after(async function () {
    await suite?.cleanup();
  });
  beforeEach(async function () {
    await suite.knex.raw('TRUNCATE orders');
  });

  it('fills 100k rows in one INSERT ... SELECT from named column expressions', async function () {
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => statements.push(query.sql);
    suite.knex.on('query', onQuery);
    const inserted = await seedTable(suite.knex, {
      table: 'orders',
      rows: 100_000,
      columns: {
        id: suite.knex.raw('g'),
        status: suite.knex.raw("CASE WHEN g % 10 = 0 THEN 'refunded' ELSE 'paid' END"),
        total_cents: suite.knex.raw('(g * 7) % 10000'),
      },
    });
    suite.knex.off('query', onQuery);
    assert.equal(inserted, 100_000);
    assert.equal(statements.filter((sql) => /^INSERT/i.test(sql)).length, 1);
    assert.match(statements[0]!, /generate_series/);
    const { rows } = await suite.knex.raw(
      "SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'refunded')::int AS refunded, max(id)::int AS max_id FROM orders",
    );
    assert.deepEqual(rows[0], { n: 100_000, refunded: 10_000, max_id: 100_000 });
    const stats = await suite.knex.raw(
      "SELECT reltuples::int AS estimate FROM pg_class WHERE oid = 'orders'::regclass",
    );
    assert.equal(stats.rows[0].estimate, 100_000, 'ANALYZE ran, so the planner knows the size');
  });

  it('accepts a raw select-list positionally, or with explicit target columns', async function () {
    await seed(suite.knex, 'orders', 10, suite.knex.raw("g, 'paid', g * 100"));
    await seedTable(suite.knex, {
      table: 'orders',
      rows: 5,
      columns: suite.knex.raw("g * 100 AS total_cents, 'new' AS status, 1000 + g AS id"),
      into: ['total_cents', 'status', 'id'],
    });
    const { rows } = await suite.knex.raw(
      "SELECT count(*)::int AS n, sum(total_cents)::int AS total, bool_and(created_at IS NOT NULL) AS defaults FROM orders WHERE status = 'new'",
    );
    assert.deepEqual(rows[0], { n: 5, total: 1500, defaults: true });
  });
});

describe('waitFor', function () {
  it('resolves with the first truthy value', async function () {
    let attempts = 0;
    const value = await waitFor(() => (++attempts >= 3 ? { attempts } : undefined), { intervalMs: 5 });
    assert.deepEqual(value, { attempts: 3 });
  });

  it('times out naming the condition and the last error', async function () {
    await assert.rejects(
      waitFor(
        () => {
          throw new Error('connection refused');
        },
        { timeoutMs: 100, intervalMs: 10, description: 'the replica to accept connections' },
      ),
      /Timed out after 100 ms waiting for the replica to accept connections \(last error: connection refused\)/,
    );
  });
});
