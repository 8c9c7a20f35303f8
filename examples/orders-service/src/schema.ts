/**
 * The service's tables as they were before phaseflag came along, and a deterministic seed, so that the load
 * generator knows what every seeded row holds without asking the database.
 */
import type { Knex } from 'knex';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/** A schema name the example accepts (plain lower-case identifier), or a thrown Error saying what is wrong. */
export function checkSchemaName(schema: string): string {
  if (!IDENT.test(schema))
    throw new Error(
      `DB_SCHEMA must be a plain lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes), got ${JSON.stringify(schema)}`,
    );
  return schema;
}

/**
 * Creates `customers` and `orders` if they do not exist, in `schema` when given (created too), else in the
 * first schema of the connection's search_path. Idempotent; never alters a table that exists.
 */
export async function createSchema(knex: Knex, options: { schema?: string } = {}): Promise<void> {
  const schema = options.schema === undefined ? undefined : checkSchemaName(options.schema);
  const t = (name: string) => (schema ? `${schema}.${name}` : name);
  await knex.transaction(async (trx) => {
    // CREATE … IF NOT EXISTS is not safe against itself: two instances starting together can both decide to
    // create (and one fails on a unique catalog index). One at a time, per database.
    await trx.raw("SELECT pg_advisory_xact_lock(hashtext('orders-service create-schema'))");
    if (schema) await trx.raw('CREATE SCHEMA IF NOT EXISTS ??', [schema]);
    await trx.raw(
      `CREATE TABLE IF NOT EXISTS ?? (
        id bigserial PRIMARY KEY,
        email text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())`,
      [t('customers')],
    );
    await trx.raw(
      `CREATE TABLE IF NOT EXISTS ?? (
        id bigserial PRIMARY KEY,
        customer_id bigint NOT NULL REFERENCES ?? (id),
        amount_cents integer NOT NULL CHECK (amount_cents >= 0),
        created_at timestamptz NOT NULL DEFAULT now())`,
      [t('orders'), t('customers')],
    );
    await trx.raw('CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON ?? (customer_id)', [t('orders')]);
  });
}

export interface SeedResult {
  /** Rows inserted now (0 when the tables held rows already: seeding never mixes with existing data). */
  orders: number;
  customers: number;
}

/** One customer per ten orders (at least one). */
export function seededCustomerCount(rows: number): number {
  return Math.max(1, Math.floor(rows / 10));
}

/** What seed() stored in orders `id` (1 … rows). */
export function seededOrder(id: number, rows: number): { customerId: number; amountCents: number } {
  return { customerId: (id % seededCustomerCount(rows)) + 1, amountCents: (id * 37) % 100_000 };
}

/** What seed() stored in customers.email for `id`: mixed case, some with spaces around, as people type them. */
export function seededCustomerEmail(id: number): string {
  return `${id % 3 === 0 ? '  ' : ''}Customer.${id}@Example.COM${id % 5 === 0 ? ' ' : ''}`;
}

/**
 * Fills empty tables with `rows` orders and rows/10 customers from generate_series, with explicit ids 1…n (so
 * seededOrder() and seededCustomerEmail() describe them) and the sequences moved past them. Tables that hold
 * rows already are left alone.
 */
export async function seed(knex: Knex, options: { rows: number; schema?: string }): Promise<SeedResult> {
  const rows = options.rows;
  if (!Number.isSafeInteger(rows) || rows < 1)
    throw new Error(`seed: rows must be a positive whole number, got ${rows}`);
  const schema = options.schema === undefined ? undefined : checkSchemaName(options.schema);
  const t = (name: string) => (schema ? `${schema}.${name}` : name);
  const customers = seededCustomerCount(rows);
  return knex.transaction(async (trx) => {
    // Two seeders at once (two instances started together) must not both see empty tables.
    await trx.raw('LOCK TABLE ?? IN SHARE ROW EXCLUSIVE MODE', [t('customers')]);
    const existing = await trx.raw(
      'SELECT (SELECT count(*) FROM (SELECT 1 FROM ?? LIMIT 1) c)::int + (SELECT count(*) FROM (SELECT 1 FROM ?? LIMIT 1) o)::int AS n',
      [t('customers'), t('orders')],
    );
    if (existing.rows[0].n > 0) return { orders: 0, customers: 0 };
    await trx.raw(
      `INSERT INTO ?? (id, email)
        SELECT g, CASE WHEN g % 3 = 0 THEN '  ' ELSE '' END || 'Customer.' || g || '@Example.COM' || CASE WHEN g % 5 = 0 THEN ' ' ELSE '' END
          FROM generate_series(1, ?::int) AS g`,
      [t('customers'), customers],
    );
    await trx.raw(
      `INSERT INTO ?? (id, customer_id, amount_cents)
        SELECT g, g % ?::int + 1, (g::bigint * 37) % 100000 FROM generate_series(1, ?::int) AS g`,
      [t('orders'), customers, rows],
    );
    for (const table of ['customers', 'orders']) {
      await trx.raw("SELECT setval(pg_get_serial_sequence(?, 'id'), (SELECT max(id) FROM ??))", [t(table), t(table)]);
    }
    await trx.raw('ANALYZE ??', [t('customers')]);
    await trx.raw('ANALYZE ??', [t('orders')]);
    return { orders: rows, customers };
  });
}
