/**
 * pgroll's and reshape's backfills, reproduced in TypeScript for case 11: neither can be built here (pgroll is Go,
 * reshape Rust, and their modules and crates cannot be fetched), so their algorithm is rewritten statement for
 * statement from their sources, with the trigger each installs.
 *
 * pgroll, github.com/xataio/pgroll at cdbe9b0f3c01abbadd78e44b4e525456315bfd00 (2026-05-12):
 * - pkg/backfill/config.go: DefaultBatchSize 1000, DefaultDelay 0 (the CLI's --backfill-batch-size/-delay defaults).
 * - pkg/backfill/trigger.go: in one transaction `ALTER TABLE t ADD COLUMN IF NOT EXISTS _pgroll_needs_backfill
 *   boolean DEFAULT true`, then the function (templates/function.go) and a `BEFORE UPDATE OR INSERT … FOR EACH ROW`
 *   trigger (templates/trigger.go). The PL/pgSQL function declares every column of the table as a variable
 *   (`"col" "schema"."t"."col"%TYPE := NEW."col"`, in key order), reads current_setting('search_path') for each row
 *   and, unless it is the latest version schema ("up"; equal to it for "down"), sets NEW.new = (up SQL) and
 *   NEW._pgroll_needs_backfill = false.
 * - pkg/migrations/op_add_column.go: one "up" trigger; op_alter_column.go (the type change): an "up" trigger and a
 *   "down" trigger, both firing on every row.
 * - pkg/backfill/backfill.go Start() + templates/sql.go: the row-count estimate from pg_stat_user_tables, then for
 *   each batch one transaction (db.WithRetryableTransaction) running
 *   `WITH batch AS (SELECT pk FROM t WHERE _pgroll_needs_backfill = true AND (pk) > ('last') ORDER BY pk LIMIT 1000
 *   FOR NO KEY UPDATE), update AS (UPDATE t SET pk = t.pk FROM batch WHERE t.pk = batch.pk RETURNING t.pk)
 *   SELECT LAST_VALUE(pk) OVER() FROM update`, until it returns no row; the delay between batches is 0.
 *
 * reshape, github.com/fabianlindfors/reshape at 66626700b0b06470d54a9a95e80b59682918c18d (2026-06-03):
 * - src/helpers.rs: reshape.is_new_schema(), PL/pgSQL, called by the triggers for each row (two current_setting).
 * - src/migrations/add_column.rs and alter_column.rs: the temporary column, then `CREATE OR REPLACE FUNCTION` with
 *   `IF NOT reshape.is_new_schema() THEN DECLARE <every column>%TYPE := NEW.col BEGIN NEW.temp = up; END` and
 *   `BEFORE UPDATE OR INSERT` triggers (alter_column adds the "down" twin, `IF reshape.is_new_schema()`).
 * - src/migrations/common.rs batch_touch_rows(): BATCH_SIZE 1000, no delay, autocommit; each batch reads the
 *   primary key from pg_index, then `WITH rows AS (SELECT pk FROM t WHERE (pk) > $1 ORDER BY pk LIMIT 1000),
 *   update AS (UPDATE t SET touched = t.touched FROM rows WHERE t.pk = rows.pk RETURNING rows.pk)
 *   SELECT LAST_VALUE((pk)) OVER () AS last_value FROM update LIMIT 1`; the touched column is the new column for
 *   add_column and the old one for alter_column.
 *
 * Simplified, with no bearing on the work per row: the physical new column carries the name phaseflag gives it
 * (pgroll would call it _pgroll_new_<name>, reshape __reshape_<migration>_<name>), so one correctness check serves
 * every method; table names are schema-qualified (each run has a schema of its own; pgroll relies on search_path,
 * reshape writes public.); no version schema of views is created (the backfill's session never has it on its
 * search_path, so the "up" branch runs, as in the real tools); pgroll's duplicated CHECK constraint, its retry on
 * lock_timeout and its progress callbacks, and reshape's index copy after the backfill are left out; reshape's
 * "down" alias is the new column's name, the name phaseflag's reverse expression uses. The drivers run in the
 * bench's Node process, one connection each, as each tool uses one.
 */
import type { Knex } from 'knex';
import type { Change } from '../lib/orders.js';

/** pgroll's and reshape's default, unchanged: pkg/backfill/config.go, src/migrations/common.rs. */
export const PEER_BATCH = 1000;

export interface PeerBackfill {
  /** Batches that updated rows (the last, empty one not counted). */
  batches: number;
}

const qi = (name: string) => `"${name.replace(/"/g, '""')}"`;
const ql = (value: string) => `'${value.replace(/'/g, "''")}'`;
const TABLE_COLUMNS = ['amount_cents', 'customer_id', 'email', 'id', 'note'];
/** The latest version schema pgroll would create (`<schema>_<migration>`), never on the backfill's search_path. */
const PGROLL_LATEST = (schema: string) => `${schema}_01_peers`;

/** pgroll's trigger function (templates/function.go) and trigger (templates/trigger.go), as it renders them. */
function pgrollTrigger(
  schema: string,
  name: string,
  direction: 'up' | 'down',
  columns: Record<string, string>,
  physicalColumn: string,
  sql: string,
): string {
  const declare = Object.keys(columns)
    .sort()
    .map((c) => `      ${qi(c)} ${qi(schema)}.${qi('orders')}.${qi(columns[c]!)}%TYPE := NEW.${qi(columns[c]!)};`)
    .join('\n');
  const expr = sql.startsWith('(') ? sql : `(${sql})`;
  return `CREATE OR REPLACE FUNCTION ${qi(schema)}.${qi(name)}()
    RETURNS TRIGGER
    LANGUAGE PLPGSQL
    AS $$
    DECLARE
${declare}
      latest_schema text;
      search_path text;
    BEGIN
      SELECT current_setting
        INTO search_path
        FROM current_setting('search_path');

      IF search_path ${direction === 'up' ? '!=' : '='} ${ql(PGROLL_LATEST(schema))} THEN
        NEW.${qi(physicalColumn)} = ${expr};
        NEW."_pgroll_needs_backfill" = false;
      END IF;

      RETURN NEW;
    END; $$;
CREATE OR REPLACE TRIGGER ${qi(name)}
    BEFORE UPDATE OR INSERT
    ON ${qi(schema)}.${qi('orders')}
    FOR EACH ROW
    EXECUTE PROCEDURE ${qi(schema)}.${qi(name)}();`;
}

/** What pgroll's start does before its backfill: the new column, the needs-backfill column, the triggers. */
export async function installPgroll(knex: Knex, change: Change, schema: string): Promise<void> {
  const same = Object.fromEntries(TABLE_COLUMNS.map((c) => [c, c]));
  await knex.transaction(async (trx) => {
    await trx.raw(`ALTER TABLE ${qi(schema)}.orders ADD COLUMN ${qi(change.newColumn)} ${change.newType}`);
    await trx.raw(
      `ALTER TABLE ${qi(schema)}.orders ADD COLUMN IF NOT EXISTS "_pgroll_needs_backfill" boolean DEFAULT true`,
    );
    await trx.raw(
      pgrollTrigger(
        schema,
        `_pgroll_trigger_orders_${change.oldColumn}`,
        'up',
        same,
        change.newColumn,
        change.expression,
      ),
    );
    if (change.reverse) {
      await trx.raw(
        pgrollTrigger(
          schema,
          `_pgroll_trigger_orders_${change.newColumn}`,
          'down',
          { ...same, [change.newColumn]: change.newColumn },
          change.oldColumn,
          change.reverse,
        ),
      );
    }
  });
}

/** pgroll's Backfill.Start with the pkBatcher: keyset on the primary key, one transaction per batch. */
export async function runPgrollBackfill(knex: Knex, schema: string, batchDelayMs = 0): Promise<PeerBackfill> {
  const t = `${qi(schema)}.${qi('orders')}`;
  await knex.raw('SELECT n_live_tup AS estimate FROM pg_stat_user_tables WHERE schemaname = ? AND relname = ?', [
    schema,
    'orders',
  ]);
  let last: string | null = null;
  let batches = 0;
  for (;;) {
    const sql: string = `WITH batch AS
(
  SELECT "id"
  FROM ${t}
  WHERE "_pgroll_needs_backfill" = true
  ${last === null ? '' : `AND ("id") > (${ql(last)})\n  `}ORDER BY "id"
  LIMIT ${PEER_BATCH}
  FOR NO KEY UPDATE
),
update AS
(
  UPDATE ${t}
  SET "id" = "orders"."id"
  FROM batch
  WHERE "orders"."id" = batch."id"
  RETURNING "orders"."id"
)
SELECT LAST_VALUE("id") OVER() AS last
FROM update
`;
    const rows: { last: string }[] = await knex.transaction(async (trx) => (await trx.raw(sql)).rows);
    if (rows.length === 0) break;
    batches++;
    last = rows[0]!.last;
    if (batchDelayMs > 0) await new Promise((r) => setTimeout(r, batchDelayMs));
  }
  return { batches };
}

/** reshape's helper (src/helpers.rs); its schema "reshape" lives in the bench's own database. */
async function installReshapeHelper(knex: Knex): Promise<void> {
  await knex.raw('CREATE SCHEMA IF NOT EXISTS reshape');
  await knex.raw(`CREATE OR REPLACE FUNCTION reshape.is_new_schema()
			RETURNS BOOLEAN AS $$
            DECLARE
                setting TEXT := current_setting('reshape.is_new_schema', TRUE);
                setting_bool BOOLEAN := setting IS NOT NULL AND setting = 'YES';
			BEGIN
				RETURN current_setting('search_path') = 'migration_0001_peers' OR setting_bool;
			END
			$$ language 'plpgsql';`);
}

function reshapeFunction(schema: string, name: string, newSchema: boolean, declarations: string[], assign: string) {
  const fn = `${qi(schema)}.${name}`;
  return `CREATE OR REPLACE FUNCTION ${fn}()
                RETURNS TRIGGER AS $$
                BEGIN
                    IF ${newSchema ? '' : 'NOT '}reshape.is_new_schema() THEN
                        DECLARE
                            ${declarations.join('\n')}
                        BEGIN
                            ${assign};
                        END;
                    END IF;
                    RETURN NEW;
                END
                $$ language 'plpgsql';

                DROP TRIGGER IF EXISTS "${name}" ON ${qi(schema)}."orders";
                CREATE TRIGGER "${name}" BEFORE UPDATE OR INSERT ON ${qi(schema)}."orders" FOR EACH ROW EXECUTE PROCEDURE ${fn}();`;
}

/**
 * What reshape's add_column (the derived column) or alter_column (the type change) runs before batch_touch_rows.
 * Returns the column the batches touch.
 */
export async function installReshape(knex: Knex, change: Change, schema: string): Promise<string> {
  await installReshapeHelper(knex);
  const decl = (alias: string, real: string, quote: boolean) =>
    `${quote ? `"${alias}"` : alias} ${qi(schema)}.orders.${real}%TYPE := NEW.${real};`;
  await knex.raw(
    `ALTER TABLE ${qi(schema)}."orders" ADD COLUMN IF NOT EXISTS ${qi(change.newColumn)} ${change.newType}`,
  );
  if (!change.reverse) {
    const declarations = TABLE_COLUMNS.map((c) => decl(c, c, true));
    await knex.raw(
      reshapeFunction(
        schema,
        `add_column_orders_${change.newColumn}`,
        false,
        declarations,
        `NEW."${change.newColumn}" = ${change.expression}`,
      ),
    );
    return change.newColumn;
  }
  const others = TABLE_COLUMNS.filter((c) => c !== change.oldColumn).map((c) => decl(c, c, false));
  await knex.raw(
    reshapeFunction(
      schema,
      `alter_column_orders_${change.oldColumn}_up`,
      false,
      [...others, decl(change.oldColumn, change.oldColumn, false)],
      `NEW.${change.newColumn} = ${change.expression}`,
    ),
  );
  await knex.raw(
    reshapeFunction(
      schema,
      `alter_column_orders_${change.oldColumn}_down`,
      true,
      [...others, decl(change.newColumn, change.newColumn, false)],
      `NEW.${change.oldColumn} = ${change.reverse}`,
    ),
  );
  return change.oldColumn;
}

/** reshape's batch_touch_rows: keyset on the primary key, autocommit, the primary key looked up for every batch. */
export async function runReshapeBackfill(knex: Knex, schema: string, touched: string): Promise<PeerBackfill> {
  const t = `${qi(schema)}."orders"`;
  let cursor: string | null = null;
  let batches = 0;
  for (;;) {
    const pk = (
      await knex.raw(
        `SELECT a.attname AS column_name
            FROM   pg_index i
            JOIN   pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE  i.indrelid = ?::regclass
            AND    i.indisprimary`,
        [`${qi(schema)}.orders`],
      )
    ).rows.map((r: { column_name: string }) => r.column_name) as string[];
    const keys = pk.join(', ');
    const where = pk.map((c) => `"orders"."${c}" = rows."${c}"`).join(' AND ');
    const query = `
            WITH rows AS (
                SELECT ${keys}
                FROM ${t}
                ${cursor === null ? '' : `WHERE (${keys}) > ?`}
                ORDER BY ${keys}
                LIMIT ${PEER_BATCH}
            ), update AS (
                UPDATE ${t} "orders"
                SET "${touched}" = "orders"."${touched}"
                FROM rows
                WHERE ${where}
                RETURNING ${pk.map((c) => `rows."${c}"`).join(', ')}
            )
            SELECT LAST_VALUE((${keys})) OVER () AS last_value
            FROM update
            LIMIT 1`;
    const rows = (await knex.raw(query, cursor === null ? [] : [cursor])).rows as { last_value: string }[];
    if (rows.length === 0) break;
    batches++;
    cursor = rows[0]!.last_value;
  }
  return { batches };
}
