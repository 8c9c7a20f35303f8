import assert from 'node:assert/strict';
import {
  formatQualifiedName,
  isPhaseflagError,
  objectName,
  parseQualifiedName,
  quoteIdent,
  validateIdentifier,
} from '../src/index.js';

function refusal(attempt: () => unknown): { code: string; value: unknown; message: string; hint: string } {
  try {
    attempt();
  } catch (e) {
    assert.ok(isPhaseflagError(e), `expected a PhaseflagError, got ${String(e)}`);
    return e;
  }
  return assert.fail('expected a refusal');
}

describe('identifiers', () => {
  const odd = [
    'Sales Data',
    'order-lines',
    'Payload Json',
    'Bestellwert €',
    '金额',
    'UPPER',
    'we"ird',
    'a.b',
    'x as y',
    '$price',
    'select',
    'order',
    'a?b',
    ' lead and trail ',
    '€'.repeat(21), // 63 bytes
  ];

  it('accepts every name Postgres accepts quoted, verbatim', () => {
    for (const name of odd) assert.equal(validateIdentifier(name, 'column'), name);
  });

  it('refuses an empty name, a NUL, more than 63 bytes and a non-string, with code, value and hint', () => {
    for (const value of ['', 'a\u0000b', 'a'.repeat(64), '€'.repeat(22), 42, null, undefined, ['a']]) {
      const e = refusal(() => validateIdentifier(value, 'column'));
      assert.equal(e.code, 'PF_INVALID_IDENTIFIER', e.message);
      assert.deepEqual(e.value, value);
      assert.ok(e.hint.includes('63 bytes'), e.hint);
    }
    assert.match(refusal(() => validateIdentifier('€'.repeat(22), 'column')).message, /66 bytes/);
    assert.match(refusal(() => validateIdentifier('a\u0000b', 'column')).message, /NUL/);
    assert.match(refusal(() => validateIdentifier('', 'column')).message, /empty/);
  });

  it('quotes names so that Postgres reads them back exactly, and writes no "?" (knex placeholders)', () => {
    assert.equal(quoteIdent('we"ird'), '"we""ird"');
    assert.equal(quoteIdent('a.b'), '"a.b"');
    assert.equal(quoteIdent('金额'), '"金额"');
    assert.equal(quoteIdent('a?b\\c"d'), 'U&"a\\003Fb\\\\c""d"');
    for (const name of odd) assert.ok(!quoteIdent(name).includes('?'), name);
  });

  it('parses the string form: parts as typed, or double-quoted as in SQL', () => {
    const cases: Array<[string, string | undefined, string]> = [
      ['orders', undefined, 'orders'],
      ['public.orders', 'public', 'orders'],
      ['Public.Orders', 'Public', 'Orders'], // no case folding: as typed, as before
      ['"Sales Data"."order-lines"', 'Sales Data', 'order-lines'],
      ['Sales Data.order-lines', 'Sales Data', 'order-lines'],
      ['"a.b"', undefined, 'a.b'],
      ['"s.x"."a.b"', 's.x', 'a.b'],
      ['"we""ird"', undefined, 'we"ird'],
      ['app."we""ird.t"', 'app', 'we"ird.t'],
      ['金额.Bestellwert €', '金额', 'Bestellwert €'],
      ['select.order', 'select', 'order'],
    ];
    for (const [text, schema, name] of cases)
      assert.deepEqual(parseQualifiedName(text, 'table'), { schema, name }, text);
  });

  it('takes the object form verbatim, quotes and dots included', () => {
    assert.deepEqual(parseQualifiedName({ schema: '"S"', name: 'a.b' }, 'table'), { schema: '"S"', name: 'a.b' });
    assert.equal(formatQualifiedName({ schema: 'Sales Data', name: 'we"ird' }), '"Sales Data"."we""ird"');
  });

  it('refuses a string form it cannot split, with the value and how to write it', () => {
    for (const text of ['a.b.c', 'a"b', '"a"b', '"unterminated', 'x."y', '"a"."b"c', 'a.', '.a', '""']) {
      const e = refusal(() => parseQualifiedName(text, 'table'));
      assert.equal(e.code, 'PF_INVALID_IDENTIFIER', text);
      assert.equal(e.value, text);
      assert.ok(e.hint.length > 10);
    }
    assert.match(refusal(() => parseQualifiedName('a.b.c', 'table')).hint, /"Sales Data"\."order-lines"/);
  });

  it('derives object names from the migration id: unchanged for existing ids, within 63 bytes for any id', () => {
    assert.equal(objectName('pf_sync', 'orders-amount'), 'pf_sync_orders_amount', 'what a running deployment has');
    assert.equal(objectName('pf_nn', 'orders-amount', 'old'), 'pf_nn_orders_amount_old');
    const longest = ['A'.repeat(63), `a${'.-_'.repeat(20)}z9`, `Z${'9'.repeat(62)}`];
    for (const id of longest)
      for (const [prefix, suffix] of [
        ['pf_sync', ''],
        ['zz_pf_sync', ''],
        ['pf_idx', ''],
        ['pf_chk', ''],
        ['pf_nn', 'old'],
      ]) {
        const name = objectName(prefix!, id, suffix);
        assert.equal(validateIdentifier(name, 'derived name'), name);
        assert.ok(Buffer.byteLength(name) <= 63 && /^[a-z0-9_]+$/.test(name), name);
      }
  });
});
