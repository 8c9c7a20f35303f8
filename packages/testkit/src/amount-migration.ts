import type { Knex } from 'knex';

/**
 * The migration most suites run, as a plain declaration: `<table>.amount_cents integer` becomes
 * `amount numeric(12,2)` NOT NULL, with a reverse for writers of the new column only, 1000-row batches and short
 * lock timeouts. Plain data (not `defineMigration()`'s result) so that it travels through an environment variable
 * as JSON to a child process, and so that the testkit does not import the code it tests; `overrides` replace
 * whole fields.
 */
export function amountInput<O extends object = Record<never, never>>(id: string, table: string, overrides?: O) {
  return {
    id,
    table,
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false },
    backfill: 'amount_cents::numeric / 100',
    reverse: '(amount * 100)::integer',
    batch: { size: 1000, targetBatchMs: 0 },
    ddl: { lockTimeoutMs: 500, retryBaseMs: 20, retryMaxMs: 200 },
    ...(overrides as O),
  };
}

/** The table `amountInput` migrates: `id bigserial`, `amount_cents integer NOT NULL`, `rows` rows, analyzed. */
export async function createAmountTable(knex: Knex, table: string, rows: number): Promise<void> {
  await knex.raw('CREATE TABLE ?? (id bigserial PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
  await knex.raw('INSERT INTO ?? (amount_cents) SELECT (g * 37) % 100000 FROM generate_series(1, ?::int) AS g', [table, rows]);
  await knex.raw('ANALYZE ??', [table]);
}

/** Rows whose new column is not what the backfill expression gives (NULL included): 0 once backfilled right. */
export async function wrongAmountRows(knex: Knex, table: string): Promise<number> {
  return (await knex.raw('SELECT count(*)::int AS n FROM ?? WHERE amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2)', [table])).rows[0].n;
}
