/**
 * Case 3, the application's side: its single-row statements (through knex with router.row(), or plain SQL that
 * knows nothing of phaseflag), timed per round as the application sees them, round trip included.
 */
import type { KnexRouter } from '@phaseflag/postgres';
import type { Knex } from 'knex';
import type { ChangeKind } from '../lib/orders.js';
import { prng } from '../lib/stats.js';

type Write = (id: number, value: number) => Promise<unknown>;

/** The application's statement: through knex with router.row() (or the plain values), or raw SQL. */
export function writer(
  db: Knex,
  schema: string,
  kind: ChangeKind,
  op: 'UPDATE' | 'INSERT',
  path: 'router' | 'trigger',
  router: KnexRouter | null,
): Write {
  const table = `${schema}.orders`;
  const row = (values: Record<string, unknown>) => (router ? router.row(values) : values);
  const email = (v: number) => `Customer${v}@Example.ORG`;
  if (path === 'router') {
    if (op === 'UPDATE') {
      return kind === 'amount'
        ? (id, v) =>
            db(table)
              .update(row({ amount_cents: v }))
              .where('id', id)
        : (id, v) =>
            db(table)
              .update(row({ email: email(v) }))
              .where('id', id);
    }
    return (_id, v) => db(table).insert(row({ customer_id: (v % 1000) + 1, amount_cents: v, email: email(v) }));
  }
  // A writer that bypasses phaseflag: the same SQL on both tables, the trigger fills the new column.
  if (op === 'UPDATE') {
    return kind === 'amount'
      ? (id, v) => db.raw(`UPDATE ${table} SET amount_cents = ? WHERE id = ?`, [v, id])
      : (id, v) => db.raw(`UPDATE ${table} SET email = ? WHERE id = ?`, [email(v), id]);
  }
  return (_id, v) =>
    db.raw(`INSERT INTO ${table} (customer_id, amount_cents, email) VALUES (?, ?, ?)`, [(v % 1000) + 1, v, email(v)]);
}

/** Mean µs per statement over one round; both variants of a round get the same ids and values. */
export async function timeRound(run: Write, n: number, round: number, rows: number): Promise<number> {
  const rand = prng(1000 + round);
  const args = Array.from({ length: n }, () => [1 + Math.floor(rand() * rows), Math.floor(rand() * 99_999)] as const);
  const started = performance.now();
  for (const [id, v] of args) await run(id, v);
  return ((performance.now() - started) * 1000) / n;
}
