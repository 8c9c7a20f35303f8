import assert from 'node:assert/strict';
import { lintSql, type LintCatalog } from '../src/index.js';

/**
 * knex's `.alter()` writes `ALTER COLUMN c TYPE T USING ("c"::T)`: a USING that is the plain cast to the target type
 * is the conversion ALTER … TYPE makes without one, so the casts that do not rewrite stay clear with it too.
 */
describe('changing-column-type: a USING that is only the cast to the target type', () => {
  const catalog: LintCatalog = {
    serverVersionNum: 150000,
    tables: [
      {
        schema: 'public',
        name: 'audit_events',
        rowsEstimate: 300_000,
        totalBytes: 60 * 1024 * 1024,
        columns: [
          { name: 'code', type: 'character varying(20)', notNull: false },
          { name: 'amount', type: 'bigint', notNull: false },
        ],
      },
    ],
  };
  const rules = async (sql: string) =>
    (await lintSql(sql, { catalog, exclude: ['require-lock-timeout'] })).findings.map((f) => f.rule);

  it('widening a varchar with knex\'s USING ("code"::varchar(40)) is not a finding', async () => {
    assert.deepEqual(
      await rules('alter table "audit_events" alter column "code" type varchar(40) using ("code"::varchar(40))'),
      [],
    );
    assert.deepEqual(await rules('ALTER TABLE audit_events ALTER COLUMN code TYPE text USING code::text'), []);
  });

  it('a USING that computes something, or casts to another type, is still a rewrite', async () => {
    assert.deepEqual(
      await rules('ALTER TABLE audit_events ALTER COLUMN code TYPE varchar(40) USING upper(code)::varchar(40)'),
      ['changing-column-type'],
    );
    assert.deepEqual(
      await rules('ALTER TABLE audit_events ALTER COLUMN code TYPE varchar(40) USING code::varchar(30)'),
      ['changing-column-type'],
    );
    assert.deepEqual(
      await rules(
        'alter table "audit_events" alter column "amount" type numeric(20, 2) using ("amount"::numeric(20, 2))',
      ),
      ['changing-column-type'],
    );
  });
});
