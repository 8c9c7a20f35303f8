import { defineMigration, validateIdentifier, type ErrorCode, type MigrationInput } from '@phaseflag/core';
import { Phaseflag, type KnexRouter, type MigrationHandle } from '@phaseflag/postgres';
import type { Knex } from 'knex';

/** One hostile input: what it is, the stable code it must be refused with, and the attempt. */
export interface HostileCase {
  kind: 'identifier' | 'expression' | 'type' | 'option' | 'cli';
  what: string;
  code: ErrorCode | `PF_${string}`;
  attempt: () => unknown;
}

/** The suite's table: `orders(id bigserial, amount_cents integer NOT NULL, note text)`. */
export const BASE: MigrationInput = {
  id: 'hostile',
  table: 'orders',
  oldColumn: 'amount_cents',
  newColumn: { name: 'amount', type: 'numeric(12,2)' },
  backfill: 'amount_cents::numeric / 100',
  reverse: '(amount * 100)::integer',
};

/**
 * Whether a name Postgres accepts when quoted (a space, a semicolon) is a valid identifier here. Under the
 * conservative rule `x; DROP TABLE y` is refused as an identifier; under the wide rule it is a name, and the
 * catalog refuses it as a table or column that does not exist. Either way nothing runs.
 */
export function quotedNamesValid(): boolean {
  try {
    validateIdentifier('x; DROP TABLE y', 'probe');
    return true;
  } catch {
    return false;
  }
}

let seq = 0;

/** A declaration with `overrides`, a fresh id, planned and then expanded: each must be refused. */
function declared(pf: Phaseflag, overrides: Record<string, unknown>): () => Promise<unknown> {
  return async () => {
    const input = { ...BASE, id: `hostile-${++seq}`, ...overrides };
    const m = pf.migration(defineMigration(input));
    await m.plan();
    return m.expand();
  };
}

const nested = (key: string, value: unknown) => ({ [key]: value });

/** The library's hostile inputs; `live` is a migration in dual-write for the run-time options, `router` its router. */
export function libraryCases(pf: Phaseflag, knex: Knex, live: MigrationHandle, router: KnexRouter): HostileCase[] {
  const wide = quotedNamesValid();
  const id = (what: string, overrides: Record<string, unknown>, code: ErrorCode = 'PF_INVALID_IDENTIFIER') => ({
    kind: 'identifier' as const,
    what,
    code,
    attempt: declared(pf, overrides),
  });
  const expr = (what: string, backfill: string, code: ErrorCode = 'PF_INVALID_EXPRESSION', extra = {}) => ({
    kind: 'expression' as const,
    what,
    code,
    attempt: declared(pf, { backfill, ...extra }),
  });
  const type = (what: string, t: unknown, code: ErrorCode) => ({
    kind: 'type' as const,
    what,
    code,
    attempt: declared(pf, { newColumn: { name: 'amount', type: t } }),
  });
  const opt = (what: string, attempt: () => unknown, code: ErrorCode) => ({
    kind: 'option' as const,
    what,
    code,
    attempt,
  });
  return [
    id('an empty table name', { table: '' }),
    id('a table name with a NUL byte', { table: 'ord\u0000ers' }),
    id('a 64-byte table name', { table: 'o'.repeat(64) }),
    id('a 64-byte column name of 2-byte characters', { oldColumn: 'é'.repeat(32) }),
    id('a number as the table', { table: 42 }, 'PF_INVALID_MIGRATION'),
    id('null as the old column', { oldColumn: null }, 'PF_INVALID_MIGRATION'),
    id('an array as the new column name', { newColumn: { name: ['amount'], type: 'numeric' } }, 'PF_INVALID_MIGRATION'),
    id('an empty schema in a qualified name', { table: '.orders' }),
    id('an empty name in a qualified name', { table: 'public.' }),
    id('an empty name in a {schema, name} table', { table: { schema: 'public', name: '' } }),
    id('a table name with a NUL in its schema', { table: { schema: 'pub\u0000lic', name: 'orders' } }),
    id('a 64-byte new column name', { newColumn: { name: 'n'.repeat(64), type: 'numeric' } }),
    id('an empty primary key column', { primaryKey: [''] }),
    id(
      '`x; DROP TABLE y` as the table',
      { table: 'x; DROP TABLE y' },
      wide ? 'PF_UNKNOWN_TABLE' : 'PF_INVALID_IDENTIFIER',
    ),
    id(
      '`x; DROP TABLE y` as the old column',
      { oldColumn: 'x; DROP TABLE y' },
      wide ? 'PF_UNKNOWN_COLUMN' : 'PF_INVALID_IDENTIFIER',
    ),
    id('an empty migration id', { id: '' }, 'PF_INVALID_MIGRATION'),
    expr('`; DROP TABLE orders` after the expression', 'amount_cents::numeric / 100; DROP TABLE orders'),
    expr('an unbalanced opening parenthesis', '(amount_cents::numeric / 100'),
    expr('a parenthesis closing the statement early', 'amount_cents) FROM orders; DROP TABLE orders; SELECT (1'),
    expr('a line comment hiding the whole expression', '-- amount_cents::numeric / 100'),
    expr('an unterminated block comment', 'amount_cents::numeric / 100 /* '),
    expr('a comment closing an outer one', 'amount_cents::numeric */ / 100'),
    expr('a dollar-quoted statement', '$$; DROP TABLE orders; $$'),
    expr('an unterminated dollar quote', 'amount_cents::numeric / 100 + $x$1'),
    expr('random()', 'random() * amount_cents', 'PF_VOLATILE_EXPRESSION'),
    expr('clock_timestamp()', 'amount_cents + extract(epoch FROM clock_timestamp())::int', 'PF_VOLATILE_EXPRESSION'),
    expr('nextval()', "amount_cents + nextval('orders_id_seq')", 'PF_VOLATILE_EXPRESSION'),
    expr('set_config()', "amount_cents + length(set_config('search_path', 'x', false))", 'PF_VOLATILE_EXPRESSION'),
    expr('a subquery', '(SELECT max(amount_cents) FROM orders)::numeric', 'PF_SUBQUERY_EXPRESSION'),
    expr('an empty expression', '', 'PF_INVALID_MIGRATION'),
    expr('`; DROP` in the reverse', 'amount_cents::numeric / 100', 'PF_INVALID_EXPRESSION', {
      reverse: '(amount * 100)::integer; DROP TABLE orders',
    }),
    expr('`; DROP` in the check', 'amount_cents::numeric / 100', 'PF_INVALID_EXPRESSION', {
      newColumn: { name: 'amount', type: 'numeric(12,2)', check: 'amount >= 0); DROP TABLE orders; --' },
    }),
    type('an unknown type', 'moneybags', 'PF_UNKNOWN_TYPE'),
    type('a statement after the type', 'numeric(12,2); DROP TABLE orders', 'PF_UNKNOWN_TYPE'),
    type('a type closing the statement', 'int) ; DROP TABLE orders; --', 'PF_UNKNOWN_TYPE'),
    type('a default smuggled in the type', 'integer DEFAULT 1 CHECK (pg_sleep(1) IS NULL)', 'PF_UNKNOWN_TYPE'),
    type('an empty type', '', 'PF_INVALID_MIGRATION'),
    type('a number as the type', 12, 'PF_INVALID_MIGRATION'),
    opt('a negative batch size', declared(pf, { batch: { size: -1 } }), 'PF_INVALID_MIGRATION'),
    opt('a NaN batch size', declared(pf, { batch: { size: Number.NaN } }), 'PF_INVALID_MIGRATION'),
    opt('a huge batch size', declared(pf, { batch: { size: 1e15, maxSize: 1e15 } }), 'PF_INVALID_MIGRATION'),
    opt('a negative lock timeout', declared(pf, { ddl: { lockTimeoutMs: -5 } }), 'PF_INVALID_MIGRATION'),
    opt('an infinite lock timeout', declared(pf, { ddl: { lockTimeoutMs: Infinity } }), 'PF_INVALID_MIGRATION'),
    opt('an unknown top-level key', declared(pf, { dropEverything: true }), 'PF_INVALID_MIGRATION'),
    opt('an unknown batch key', declared(pf, { batch: nested('sizes', 3) }), 'PF_INVALID_MIGRATION'),
    opt('a preflight batch size of -1', () => live.preflight({ batchSize: -1 }), 'PF_INVALID_OPTIONS'),
    opt('a preflight row limit of NaN', () => live.preflight({ maxRows: Number.NaN }), 'PF_INVALID_OPTIONS'),
    opt('an unknown select() option', () => router.select(undefined, { bogus: 1 } as never), 'PF_INVALID_OPTIONS'),
    opt(
      'a select() alias that is not a string',
      () => router.select(undefined, { as: 7 } as never),
      'PF_INVALID_OPTIONS',
    ),
    opt('a knob batch size of NaN', () => live.setBackfillKnobs({ batchSize: Number.NaN }), 'PF_INVALID_OPTIONS'),
    opt('a knob pause of -1 ms', () => live.setBackfillKnobs({ pauseMs: -1 }), 'PF_INVALID_OPTIONS'),
    opt('an unknown knob', () => live.setBackfillKnobs({ dropTable: true } as never), 'PF_INVALID_OPTIONS'),
    opt('an empty state schema', () => new Phaseflag({ knex, stateSchema: '' }), 'PF_INVALID_IDENTIFIER'),
    opt('a poll interval of -1 ms', () => new Phaseflag({ knex, pollIntervalMs: -1 }), 'PF_INVALID_OPTIONS'),
    opt('a grace period of NaN', () => new Phaseflag({ knex, graceMs: Number.NaN }), 'PF_INVALID_OPTIONS'),
    opt('an instance TTL as text', () => new Phaseflag({ knex, instanceTtlMs: '30s' as never }), 'PF_INVALID_OPTIONS'),
    opt('no knex', () => new Phaseflag({ knex: undefined as never }), 'PF_INVALID_OPTIONS'),
    opt(
      'a state schema with a NUL',
      () => new Phaseflag({ knex, stateSchema: 'pf\u0000state' }),
      'PF_INVALID_IDENTIFIER',
    ),
  ];
}

/**
 * Run-time backfill options on a migration in dual-write: refused before the phase moves (kept apart: today the
 * phase moves to backfilling and the ranges are written before the options are parsed).
 */
export function backfillOptionCases(live: MigrationHandle): HostileCase[] {
  const opt = (what: string, attempt: () => unknown) => ({
    kind: 'option' as const,
    what,
    code: 'PF_INVALID_OPTIONS' as const,
    attempt,
  });
  return [
    opt('a run-time batch size of -1', () => live.backfill({ batch: { size: -1 } })),
    opt('a run-time batch size of NaN', () => live.backfill({ batch: { size: Number.NaN } })),
    opt('a run-time replica lag limit of -1 ms', () => live.backfill({ throttle: { maxReplicaLagMs: -1 } })),
  ];
}
