import assert from 'node:assert/strict';
import { defineMigration, isPhaseflagError, type MigrationInput } from '../src/index.js';

const base: MigrationInput = {
  id: 'orders-amount',
  table: 'public.orders',
  oldColumn: 'amount_cents',
  newColumn: { name: 'amount', type: 'numeric(12,2)' },
  backfill: 'amount_cents::numeric / 100',
  reverse: '(amount * 100)::integer',
};

function refused(input: unknown, code: string): Record<string, unknown> {
  try {
    defineMigration(input as MigrationInput);
  } catch (e) {
    assert.ok(isPhaseflagError(e), `expected a PhaseflagError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.hint.length > 0, 'every error says what to do');
    return e as unknown as Record<string, unknown>;
  }
  assert.fail(`expected ${code}`);
}

describe('defineMigration', () => {
  it('normalizes a declaration with safe defaults and derived flag names', () => {
    const m = defineMigration(base);
    assert.deepEqual(m.table, { schema: 'public', name: 'orders' });
    assert.deepEqual(m.primaryKey, ['id']);
    assert.equal(m.newColumn.nullable, true);
    assert.equal(m.newColumn.index, null);
    assert.equal(m.sync.trigger, true, 'the trigger sync is on by default');
    assert.equal(m.ddl.lockTimeoutMs, 400, 'a queued attempt stalls the application ≤ 400 ms');
    assert.equal(m.ddl.longTransactionMs, 200, 'holds back, without queueing, behind transactions older than this');
    assert.equal(m.ddl.lockTimeoutMs * m.ddl.maxAttempts, 60_000, 'a statement may wait 60 s for its lock in all');
    assert.equal(m.ddl.retryMaxMs, 1000);
    assert.deepEqual(m.flags, {
      dualWrite: 'orders-amount.dual-write',
      backfill: 'orders-amount.backfill',
      readNew: 'orders-amount.read-new',
      contract: 'orders-amount.contract',
    });
    assert.ok(Object.isFrozen(m) && Object.isFrozen(m.newColumn), 'a declaration cannot be changed after validation');
  });

  it('accepts a composite primary key, an index and a named check', () => {
    const m = defineMigration({
      ...base,
      primaryKey: ['tenant_id', 'id'],
      newColumn: { name: 'amount', type: 'numeric(12,2)', index: { unique: true }, check: 'amount >= 0' },
    });
    assert.deepEqual(m.primaryKey, ['tenant_id', 'id']);
    assert.equal(m.newColumn.index?.unique, true);
    assert.match(m.newColumn.index.name, /^pf_idx_orders_amount/);
    assert.equal(m.newColumn.check?.expression, 'amount >= 0');
  });

  it('refuses names Postgres cannot hold, with the offending value', () => {
    const e = refused({ ...base, table: 'orders"; drop table x' }, 'PF_INVALID_IDENTIFIER');
    assert.equal(e.value, 'orders"; drop table x');
    refused({ ...base, oldColumn: 'amount\u0000cents' }, 'PF_INVALID_IDENTIFIER');
    refused({ ...base, newColumn: { name: 'a'.repeat(64), type: 'text' } }, 'PF_INVALID_IDENTIFIER');
    refused({ ...base, table: 'a.b.c' }, 'PF_INVALID_IDENTIFIER');
    refused({ ...base, primaryKey: ['id', ''] }, 'PF_INVALID_IDENTIFIER');
  });

  it('takes any quotable name: spaces, dots, quotes, Unicode, keywords, upper case', () => {
    const m = defineMigration({
      ...base,
      table: '"Sales Data"."order-lines"',
      primaryKey: ['order', 'Line No'],
      oldColumn: 'Payload Json',
      newColumn: {
        name: 'we"ird.a.b $金额',
        type: 'jsonb',
        index: { name: 'idx "€"' },
        check: { name: 'select', expression: 'true' },
      },
      backfill: '"Payload Json"::jsonb',
      reverse: null,
    });
    assert.deepEqual(m.table, { schema: 'Sales Data', name: 'order-lines' });
    assert.deepEqual(m.primaryKey, ['order', 'Line No']);
    assert.equal(m.oldColumn, 'Payload Json');
    assert.equal(m.newColumn.name, 'we"ird.a.b $金额');
    assert.equal(m.newColumn.index?.name, 'idx "€"');
    assert.equal(m.newColumn.check?.name, 'select');
  });

  it('refuses impossible combinations', () => {
    refused({ ...base, newColumn: { name: 'amount_cents', type: 'bigint' } }, 'PF_INVALID_MIGRATION');
    refused({ ...base, oldColumn: null }, 'PF_INVALID_MIGRATION'); // reverse without an old column
    refused(
      { ...base, backfill: null, reverse: null, newColumn: { name: 'amount', type: 'numeric', nullable: false } },
      'PF_INVALID_MIGRATION',
    );
    refused({ ...base, primaryKey: 'amount' }, 'PF_INVALID_MIGRATION');
    refused({ ...base, batch: { size: 10, minSize: 100 } }, 'PF_INVALID_MIGRATION');
    refused({ ...base, flags: { dualWrite: 'x', backfill: 'x' } }, 'PF_INVALID_MIGRATION');
    refused({ ...base, id: 'no spaces allowed' }, 'PF_INVALID_MIGRATION');
    refused({ ...base, unknownOption: true }, 'PF_INVALID_MIGRATION');
    refused({ ...base, batch: { workers: 0 } }, 'PF_INVALID_MIGRATION');
  });

  it('names the offending fields in the message', () => {
    const e = refused({ ...base, batch: { size: -1 } }, 'PF_INVALID_MIGRATION');
    assert.match(String(e.message), /batch\.size/);
    const { table: _table, ...noTable } = base;
    assert.match(
      String(refused(noTable, 'PF_INVALID_MIGRATION').message),
      /table: required: the table to change, "schema\.table"/,
    );
    assert.match(
      String(refused({ ...base, table: 5 }, 'PF_INVALID_MIGRATION').message),
      /table: expected "schema\.table", "table" or \{ schema, name \}, got 5/,
    );
  });

  it('declares an intent: replace by default; derive needs a source and a backfill, and has no reverse', () => {
    const base = { id: 'x', table: 't', newColumn: { name: 'b', type: 'text' } };
    assert.equal(defineMigration({ ...base, oldColumn: 'a', backfill: 'lower(a)' }).intent, 'replace');
    assert.equal(defineMigration({ ...base, oldColumn: 'a', backfill: 'lower(a)', intent: 'derive' }).intent, 'derive');
    assert.throws(
      () => defineMigration({ ...base, intent: 'derive', backfill: 'lower(a)' }),
      (e: { code?: string }) => e.code === 'PF_INVALID_MIGRATION',
    );
    assert.throws(() => defineMigration({ ...base, intent: 'derive', oldColumn: 'a' }), /names no backfill/);
    assert.throws(
      () => defineMigration({ ...base, intent: 'derive', oldColumn: 'a', backfill: 'lower(a)', reverse: 'b' }),
      /reverse/,
    );
    assert.throws(
      () => defineMigration({ ...base, intent: 'merge' as 'derive', oldColumn: 'a', backfill: 'lower(a)' }),
      /intent/,
    );
    assert.throws(
      () =>
        defineMigration({ ...base, intent: 'derive', oldColumn: 'a', backfill: 'lower(a)', sync: { trigger: false } }),
      /sync trigger off/,
    );
  });
});

describe('defineMigration: a foreign key on the new column', () => {
  it('normalizes references (qualified table, default name and onDelete) and implies an index', () => {
    const m = defineMigration({
      ...base,
      newColumn: { name: 'amount', type: 'bigint', references: { table: 'billing.customers', column: 'id' } },
    });
    assert.deepEqual(m.newColumn.references, {
      name: 'pf_fk_orders_amount',
      table: { schema: 'billing', name: 'customers' },
      column: 'id',
      onDelete: 'no action',
    });
    assert.equal(m.newColumn.index?.name, 'pf_idx_orders_amount', 'the referencing column is indexed');
    assert.equal(defineMigration(base).newColumn.references, null);
  });

  it('refuses bad references with a typed error', () => {
    const ref = (references: unknown, nullable = true) => ({
      ...base,
      newColumn: { name: 'amount', type: 'bigint', nullable, references },
    });
    refused(ref({ table: 'customers', column: 'id', onDelete: 'set null' }, false), 'PF_INVALID_MIGRATION');
    refused(ref({ table: 'customers', column: 'id', onDelete: 'sometimes' }), 'PF_INVALID_MIGRATION');
    refused(ref({ table: 'customers' }), 'PF_INVALID_MIGRATION');
    refused(ref({ table: 'customers', column: 'bad\u0000name' }), 'PF_INVALID_IDENTIFIER');
    refused(ref({ table: 'customers', column: 'c'.repeat(64) }), 'PF_INVALID_IDENTIFIER');
  });
});
