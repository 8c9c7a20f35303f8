import assert from 'node:assert/strict';
import knex from 'knex';
import { createSuiteSchema, suiteSchemaName, type Suite } from '../src/index.js';

const schemaExists = async (suite: Suite, name: string) =>
  (await suite.knex.raw('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ?', [name])).rows[0].n === 1;

describe('createSuiteSchema', function () {
  let first: Suite;
  let second: Suite;

  before(async function () {
    [first, second] = await Promise.all([createSuiteSchema('Orders: add NOT NULL'), createSuiteSchema('orders')]);
  });

  after(async function () {
    await first?.cleanup();
    await second?.cleanup();
  });

  it('names schemas pf_<sanitised name>_<random> and reserves a matching, uncreated state schema', async function () {
    assert.match(first.schema, /^pf_orders_add_not_null_[0-9a-f]{8}$/);
    assert.equal(first.stateSchema, `pf_state_${first.schema.slice(-8)}`);
    assert.notEqual(first.schema, second.schema);
    assert.equal(await schemaExists(first, first.schema), true);
    assert.equal(await schemaExists(first, first.stateSchema), false);
  });

  it('keeps same-named tables of two suites apart', async function () {
    await first.knex.raw('CREATE TABLE orders (id int)');
    await second.knex.raw('CREATE TABLE orders (id int)');
    await first.knex.raw('INSERT INTO orders VALUES (1), (2)');
    assert.equal((await first.knex('orders').count({ n: '*' }))[0]!.n, '2');
    assert.equal((await second.knex('orders').count({ n: '*' }))[0]!.n, '0');
    assert.equal((await first.knex.raw('SELECT current_schema() AS s')).rows[0].s, first.schema);
  });

  it('gives newKnex pools and clients built from connectionString the same search_path', async function () {
    const extra = first.newKnex({ pool: { max: 2 } });
    assert.equal((await extra.raw('SELECT current_schema() AS s')).rows[0].s, first.schema);
    const outside = knex({ client: 'pg', connection: first.connectionString, pool: { min: 0, max: 1 } });
    try {
      assert.equal((await outside.raw('SELECT current_schema() AS s')).rows[0].s, first.schema);
      // A startup option is the session default, so RESET does not escape the suite's schema.
      const connection = await outside.transaction(async (trx) => {
        await trx.raw('SET LOCAL search_path = public');
        await trx.raw('RESET search_path');
        return (await trx.raw('SELECT current_schema() AS s')).rows[0].s;
      });
      assert.equal(connection, first.schema);
    } finally {
      await outside.destroy();
    }
  });

  it('drops both schemas and destroys every pool on cleanup', async function () {
    const suite = await createSuiteSchema('cleanup check');
    const extra = suite.newKnex();
    await extra.raw('SELECT 1');
    await suite.knex.raw('CREATE SCHEMA ??', [suite.stateSchema]); // as the code under test would
    await suite.knex.raw('CREATE TABLE ??.phase (id int)', [suite.stateSchema]);
    await suite.cleanup();
    await suite.cleanup(); // idempotent
    assert.equal(await schemaExists(first, suite.schema), false);
    assert.equal(await schemaExists(first, suite.stateSchema), false);
    await assert.rejects(extra.raw('SELECT 1'));
    await assert.rejects(suite.knex.raw('SELECT 1'));
  });

  it('keeps generated names within the 63-byte identifier limit', function () {
    const name = suiteSchemaName('x'.repeat(200), 'deadbeef');
    assert.ok(name.length <= 63, name);
    assert.equal(suiteSchemaName('!!!', 'deadbeef'), 'pf_suite_deadbeef');
  });
});
