import assert from 'node:assert/strict';
import { RULES } from '../src/index.js';
import { only, rulesOf } from './support.js';

/** Each rule: its unsafe form is reported, its safe twin is not. */
const CASES: Array<{
  rule: string;
  unsafe: string;
  safe: string;
  options?: { pgVersion?: number; assumeInTransaction?: boolean };
}> = [
  {
    rule: 'require-concurrent-index-creation',
    unsafe: 'CREATE INDEX i ON orders (a);',
    safe: 'CREATE INDEX CONCURRENTLY i ON orders (a);',
  },
  {
    rule: 'require-concurrent-index-deletion',
    unsafe: 'DROP INDEX orders_a;',
    safe: 'DROP INDEX CONCURRENTLY orders_a;',
  },
  {
    rule: 'constraint-missing-not-valid',
    unsafe: 'ALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0);',
    safe: 'ALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID;',
  },
  {
    rule: 'adding-foreign-key-constraint',
    unsafe: 'ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id);',
    safe: 'ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;',
  },
  {
    rule: 'adding-field-with-default',
    unsafe: 'ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();',
    safe: "ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';",
  },
  {
    rule: 'changing-column-type',
    unsafe: 'ALTER TABLE orders ALTER COLUMN amount TYPE bigint;',
    safe: 'ALTER TABLE orders ADD COLUMN note varchar(20);\nALTER TABLE orders ALTER COLUMN note TYPE text;',
  },
  {
    rule: 'adding-not-nullable-field',
    unsafe: 'ALTER TABLE orders ALTER COLUMN note SET NOT NULL;',
    safe: [
      'ALTER TABLE orders ADD CONSTRAINT note_nn CHECK (note IS NOT NULL) NOT VALID;',
      'ALTER TABLE orders VALIDATE CONSTRAINT note_nn;',
      'ALTER TABLE orders ALTER COLUMN note SET NOT NULL;',
    ].join('\n'),
  },
  {
    rule: 'adding-required-field',
    unsafe: 'ALTER TABLE orders ADD COLUMN tier text NOT NULL;',
    safe: "ALTER TABLE orders ADD COLUMN tier text NOT NULL DEFAULT 'basic';",
  },
  {
    rule: 'disallowed-unique-constraint',
    unsafe: 'ALTER TABLE orders ADD CONSTRAINT u UNIQUE (a);',
    safe: 'ALTER TABLE orders ADD CONSTRAINT u UNIQUE USING INDEX orders_a_key;',
  },
  {
    rule: 'renaming-column',
    unsafe: 'ALTER TABLE orders RENAME COLUMN a TO b;',
    safe: 'ALTER TABLE orders ADD COLUMN b text;',
  },
  {
    rule: 'renaming-table',
    unsafe: 'ALTER TABLE orders RENAME TO purchases;',
    safe: 'CREATE VIEW purchases AS SELECT * FROM orders;',
  },
  {
    rule: 'ban-drop-column',
    unsafe: 'ALTER TABLE orders DROP COLUMN legacy;',
    safe: 'ALTER TABLE orders ADD COLUMN legacy2 text;',
  },
  {
    rule: 'ban-drop-not-null',
    unsafe: 'ALTER TABLE orders ALTER COLUMN a DROP NOT NULL;',
    safe: "ALTER TABLE orders ALTER COLUMN a SET DEFAULT 'x';",
  },
  {
    rule: 'adding-serial-primary-key-field',
    unsafe: 'ALTER TABLE orders ADD PRIMARY KEY (id);',
    safe: 'ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_id_idx;',
  },
  {
    rule: 'ban-concurrent-index-creation-in-transaction',
    unsafe: 'BEGIN; CREATE INDEX CONCURRENTLY i ON orders (a); COMMIT;',
    safe: 'CREATE INDEX CONCURRENTLY i ON orders (a);',
  },
  {
    rule: 'validate-in-same-transaction',
    unsafe:
      'BEGIN;\nALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT c;\nCOMMIT;',
    safe: 'BEGIN;\nALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nCOMMIT;\nALTER TABLE orders VALIDATE CONSTRAINT c;',
  },
  { rule: 'ban-vacuum-full', unsafe: 'VACUUM FULL orders;', safe: 'VACUUM (ANALYZE) orders;' },
  { rule: 'ban-cluster', unsafe: 'CLUSTER orders USING orders_pkey;', safe: 'ANALYZE orders;' },
  { rule: 'require-concurrent-reindex', unsafe: 'REINDEX TABLE orders;', safe: 'REINDEX TABLE CONCURRENTLY orders;' },
  {
    rule: 'prefer-bigint-over-int',
    unsafe: 'CREATE TABLE t (id serial PRIMARY KEY);',
    safe: 'CREATE TABLE t (id bigserial PRIMARY KEY);',
  },
];

describe('lint rules: each unsafe form is found, its safe twin is not', () => {
  for (const c of CASES) {
    it(`${c.rule}`, async () => {
      assert.ok((await only(c.unsafe, c.options)).includes(c.rule), `unsafe: ${c.unsafe}`);
      assert.ok(!(await only(c.safe, c.options)).includes(c.rule), `safe: ${c.safe}`);
    });
  }

  it('require-lock-timeout: found without SET lock_timeout, not after SET or SET LOCAL in the transaction', async () => {
    assert.deepEqual(await rulesOf('ALTER TABLE orders ADD COLUMN b text;'), ['require-lock-timeout']);
    assert.deepEqual(await rulesOf("SET lock_timeout = '2s'; ALTER TABLE orders ADD COLUMN b text;"), []);
    assert.deepEqual(
      await rulesOf("BEGIN; SET LOCAL lock_timeout = '2s'; ALTER TABLE orders ADD COLUMN b text; COMMIT;"),
      [],
    );
    // SET LOCAL ends with its transaction; outside one it does nothing.
    assert.deepEqual(
      await rulesOf("BEGIN; SET LOCAL lock_timeout = '2s'; COMMIT; ALTER TABLE orders ADD COLUMN b text;"),
      ['require-lock-timeout'],
    );
    assert.deepEqual(await rulesOf("SET LOCAL lock_timeout = '2s'; ALTER TABLE orders ADD COLUMN b text;"), [
      'require-lock-timeout',
    ]);
    assert.deepEqual(await rulesOf('SET lock_timeout = 0; ALTER TABLE orders ADD COLUMN b text;'), [
      'require-lock-timeout',
    ]);
  });

  it('every rule of RULES has a case here, and the levels are error but prefer-bigint-over-int', () => {
    const covered = new Set([...CASES.map((c) => c.rule), 'require-lock-timeout']);
    assert.deepEqual(
      RULES.map((r) => r.name).filter((r) => !covered.has(r)),
      [],
    );
    assert.deepEqual(
      RULES.filter((r) => r.level === 'warning').map((r) => r.name),
      ['prefer-bigint-over-int'],
    );
    // squawk's names as squawk 2.66 reports them; it has no rule that fires on VACUUM FULL or CLUSTER
    assert.equal(RULES.find((r) => r.name === 'require-lock-timeout')?.squawk, 'require-lock-timeout');
    assert.deepEqual(
      RULES.filter((r) => r.squawk === undefined).map((r) => r.name),
      ['ban-vacuum-full', 'ban-cluster'],
    );
  });
});

describe('lint semantics', () => {
  it('a constant default is safe from PostgreSQL 11 (now() is stable: evaluated once), any default rewrites before', async () => {
    assert.deepEqual(await only("ALTER TABLE orders ADD COLUMN s text DEFAULT 'x';"), []);
    assert.deepEqual(await only('ALTER TABLE orders ADD COLUMN at timestamptz DEFAULT now();'), []);
    assert.deepEqual(await only("ALTER TABLE orders ADD COLUMN s text DEFAULT 'x';", { pgVersion: 10 }), [
      'adding-field-with-default',
    ]);
    assert.deepEqual(await only('ALTER TABLE orders ADD COLUMN s text DEFAULT my_fn();'), [
      'adding-field-with-default',
    ]);
    assert.deepEqual(await only('ALTER TABLE orders ADD COLUMN n bigserial;'), ['adding-field-with-default']);
    assert.deepEqual(await only('ALTER TABLE users ADD COLUMN e text GENERATED ALWAYS AS (lower(email)) STORED;'), [
      'adding-field-with-default',
    ]);
  });

  it('changing-column-type: the casts that do not rewrite are not findings, with the old type from the file', async () => {
    const change = async (from: string, to: string, pre = '') =>
      only(`${pre}ALTER TABLE orders ADD COLUMN c ${from};\nALTER TABLE orders ALTER COLUMN c TYPE ${to};`);
    for (const [from, to] of [
      ['varchar(10)', 'text'],
      ['varchar(10)', 'varchar(20)'],
      ['varchar(10)', 'varchar'],
      ['varchar', 'text'],
      ['numeric(10,2)', 'numeric(12,2)'],
      ['numeric(10,2)', 'numeric'],
      ['cidr', 'inet'],
      ['timestamp(3)', 'timestamp(6)'],
    ])
      assert.deepEqual(await change(from!, to!), [], `${from} → ${to}`);
    for (const [from, to] of [
      ['varchar(20)', 'varchar(10)'],
      ['numeric(10,2)', 'numeric(12,4)'],
      ['smallint', 'bigint'],
      ['text', 'varchar(10)'],
      ['inet', 'cidr'],
    ])
      assert.deepEqual(await change(from!, to!), ['changing-column-type'], `${from} → ${to}`);
    // timestamp → timestamptz: a catalog change only in a UTC session (PostgreSQL 12+)
    assert.deepEqual(await change('timestamp', 'timestamptz'), ['changing-column-type']);
    assert.deepEqual(await change('timestamp', 'timestamptz', "SET TIME ZONE 'UTC';\n"), []);
  });

  it('changing-column-type with a USING expression always rewrites', async () => {
    assert.deepEqual(
      await only(
        'ALTER TABLE orders ADD COLUMN c varchar(10);\nALTER TABLE orders ALTER COLUMN c TYPE text USING upper(c);',
      ),
      ['changing-column-type'],
    );
  });

  it('SET NOT NULL after a validated CHECK (c IS NOT NULL) is safe from PostgreSQL 12, not on 11', async () => {
    const sql = [
      'ALTER TABLE orders ADD CONSTRAINT nn CHECK (note IS NOT NULL) NOT VALID;',
      'ALTER TABLE orders VALIDATE CONSTRAINT nn;',
      'ALTER TABLE orders ALTER COLUMN note SET NOT NULL;',
    ].join('\n');
    assert.deepEqual(await only(sql, { pgVersion: 12 }), []);
    assert.deepEqual(await only(sql, { pgVersion: 11 }), ['adding-not-nullable-field']);
    // a check on another column proves nothing
    assert.deepEqual(await only(sql.replace('(note IS NOT NULL)', '(other IS NOT NULL)')), [
      'adding-not-nullable-field',
    ]);
  });

  it('NOT VALID then VALIDATE: a finding in one transaction (BEGIN or assumeInTransaction), none across two', async () => {
    const sql =
      'ALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT c;';
    assert.deepEqual(await only(sql), []);
    assert.deepEqual(await only(sql, { assumeInTransaction: true }), ['validate-in-same-transaction']);
  });
});
