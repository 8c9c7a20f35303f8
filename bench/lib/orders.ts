import { defineMigration, type Migration, type MigrationInput } from '@phaseflag/core';
import type { Knex } from 'knex';

/**
 * The table every case works on: the orders table of the test suites (test/support/orders.ts), built with one
 * INSERT … SELECT over generate_series, then VACUUM ANALYZE so it looks like a table autovacuum has already seen
 * (all-visible pages, statistics): the state a production table is in when a migration starts.
 */
export async function buildOrders(knex: Knex, schema: string, rows: number): Promise<void> {
  await knex.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
  await knex.raw('CREATE SCHEMA ??', [schema]);
  await knex.raw(
    `CREATE TABLE ??.orders (
    id bigserial PRIMARY KEY,
    customer_id integer NOT NULL,
    amount_cents integer NOT NULL CHECK (amount_cents >= 0),
    email text,
    note text
  )`,
    [schema],
  );
  await knex.raw(
    `INSERT INTO ??.orders (id, customer_id, amount_cents, email)
    SELECT g, (g % 1000) + 1, (g * 37) % 100000, 'User' || g || '@Example.COM' FROM generate_series(1, ?::bigint) AS g`,
    [schema, rows],
  );
  await knex.raw(`SELECT setval(pg_get_serial_sequence(?, 'id'), ?::bigint)`, [`"${schema}".orders`, rows]);
  await knex.raw('VACUUM (ANALYZE) ??.orders', [schema]);
}

export async function dropSchema(knex: Knex, schema: string): Promise<void> {
  await knex.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
}

/** The two column changes of the issue: a derived column and a type change. */
export type ChangeKind = 'email' | 'amount';

export interface Change {
  readonly kind: ChangeKind;
  readonly label: string;
  readonly oldColumn: string;
  readonly newColumn: string;
  readonly newType: string;
  /** The backfill expression, as phaseflag declares it. */
  readonly expression: string;
  readonly reverse: string | null;
}

export const CHANGES: Record<ChangeKind, Change> = {
  email: {
    kind: 'email',
    label: 'derived column `email_lower = lower(email)`',
    oldColumn: 'email',
    newColumn: 'email_lower',
    newType: 'text',
    expression: 'lower(email)',
    reverse: null,
  },
  amount: {
    kind: 'amount',
    label: 'type change `amount_cents int → amount numeric(12,2)`',
    oldColumn: 'amount_cents',
    newColumn: 'amount',
    newType: 'numeric(12,2)',
    expression: 'amount_cents::numeric / 100',
    reverse: '(amount * 100)::integer',
  },
};

/** phaseflag's declaration of a change, with the default batch settings unless a case overrides them. */
export function migrationFor(
  change: Change,
  id: string,
  schema: string,
  extra: Partial<MigrationInput> = {},
): Migration {
  return defineMigration(migrationInput(change, id, schema, extra));
}

/** The declaration as a user writes it (what a child process is handed). */
export function migrationInput(
  change: Change,
  id: string,
  schema: string,
  extra: Partial<MigrationInput> = {},
): MigrationInput {
  return {
    id,
    table: { schema, name: 'orders' },
    oldColumn: change.oldColumn,
    newColumn: { name: change.newColumn, type: change.newType },
    backfill: change.expression,
    ...(change.reverse ? { reverse: change.reverse } : {}),
    ...extra,
  };
}

/** What a user writes without phaseflag: the new value for every row, cast as phaseflag casts it. */
export function singleUpdateSql(change: Change, schema: string): string {
  return `UPDATE "${schema}".orders SET ${change.newColumn} = (${change.expression})::${change.newType}`;
}

export function addColumnSql(change: Change, schema: string): string {
  return `ALTER TABLE "${schema}".orders ADD COLUMN ${change.newColumn} ${change.newType}`;
}
