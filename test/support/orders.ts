import type { Knex } from 'knex';
import { defineMigration, type Migration, type MigrationInput } from '@phaseflag/core';
import { Phaseflag, type KnexRouter } from '@phaseflag/postgres';
import { amountInput, seedTable, type LoadOp, type Suite } from '@phaseflag/testkit';

/**
 * The running example: testkit's amount migration (integer cents become numeric(12,2), NOT NULL at the end, with a
 * reverse for new-only writers) on `orders`, with an index and a check on the new column and batches sized
 * towards 50 ms.
 */
export function ordersAmount(overrides: Partial<MigrationInput> = {}): Migration {
  return defineMigration(
    amountInput('orders-amount', 'orders', {
      newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true, check: 'amount >= 0' },
      batch: { size: 2000, targetBatchMs: 50 },
      ...overrides,
    }),
  );
}

export async function createOrders(knex: Knex, rows: number): Promise<void> {
  await knex.raw(`CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id integer NOT NULL,
    amount_cents integer NOT NULL CHECK (amount_cents >= 0),
    email text,
    note text
  )`);
  await seedTable(knex, {
    table: 'orders',
    rows,
    columns: {
      customer_id: knex.raw('(g % 1000) + 1'),
      amount_cents: knex.raw('(g * 37) % 100000'),
      email: knex.raw("'User' || g || '@Example.COM'"),
    },
  });
}

export function engine(suite: Suite, extra: Partial<ConstructorParameters<typeof Phaseflag>[0]> = {}): Phaseflag {
  return new Phaseflag({
    knex: suite.knex,
    stateSchema: suite.stateSchema,
    pollIntervalMs: 100,
    graceMs: 300,
    ...extra,
  });
}

const rand = (n: number) => 1 + Math.floor(Math.random() * n);

/** Application traffic that goes through the router: reads under the logical name, inserts and updates of one side. */
export function routerOps(router: KnexRouter, maxId: number): LoadOp[] {
  return [
    {
      name: 'router-read',
      weight: 4,
      run: async (_i, db) => {
        await db('orders')
          .select('id', router.select({ userId: String(rand(100)) }))
          .where('id', rand(maxId));
      },
    },
    {
      name: 'router-insert',
      weight: 1,
      run: async (_i, db) => {
        await db('orders').insert(router.row({ customer_id: rand(1000), amount_cents: rand(99_999) }));
      },
    },
    {
      name: 'router-update',
      weight: 2,
      run: async (_i, db) => {
        await db('orders')
          .update(router.row({ amount_cents: rand(99_999) }))
          .where('id', rand(maxId));
      },
    },
  ];
}

/** Writers that know nothing of phaseflag: plain SQL on the old column only. */
export function plainOps(maxId: number): LoadOp[] {
  return [
    {
      name: 'plain-update',
      weight: 2,
      run: async (_i, db) => {
        await db.raw('UPDATE orders SET amount_cents = (amount_cents + 1) % 100000 WHERE id = ?', [rand(maxId)]);
      },
    },
    {
      name: 'plain-insert',
      weight: 1,
      run: async (_i, db) => {
        await db.raw('INSERT INTO orders (customer_id, amount_cents) VALUES (?, ?)', [rand(1000), rand(99_999)]);
      },
    },
    {
      name: 'plain-read',
      weight: 2,
      run: async (_i, db) => {
        await db.raw('SELECT amount_cents FROM orders WHERE id = ?', [rand(maxId)]);
      },
    },
  ];
}

/** Rows whose new column is not what the backfill expression gives. */
export async function wrongRows(knex: Knex): Promise<number> {
  const r = await knex.raw(
    'SELECT count(*)::int AS n FROM orders WHERE amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2)',
  );
  return r.rows[0].n as number;
}

export async function columnExists(knex: Knex, schema: string, column: string): Promise<boolean> {
  const r = await knex.raw(
    'SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?',
    [schema, 'orders', column],
  );
  return r.rows[0].n === 1;
}
