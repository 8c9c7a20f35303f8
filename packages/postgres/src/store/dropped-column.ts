import { quoteIdent, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';

/**
 * The state store's record of an old column dropped at contract. Once a migration is `contracted` and the drop
 * is recorded, the table no longer has the declared old column and must not need it: the catalog check accepts
 * its absence (and only then), and routers read and write the new column alone.
 */
export interface DroppedOldColumn {
  /** format_type() of the column as it was (pg_catalog spelling), to type old values a writer still supplies. */
  readonly type: string;
  readonly droppedAt: Date;
}

/**
 * The statement that records the drop, run in the DROP COLUMN's own transaction (see runDdl's `record`), so the
 * column is never gone without the store saying so, nor the other way round.
 */
export function recordOldColumnDrop(
  stateSchema: string,
  migrationId: string,
  type: string,
): { text: string; values: unknown[] } {
  return {
    text: `UPDATE ${quoteIdent(stateSchema)}.migrations SET old_column_dropped_at = coalesce(old_column_dropped_at, now()), old_column_type = $2, updated_at = now() WHERE id = $1`,
    values: [migrationId, type],
  };
}

/** The same record outside a DROP: the column was found gone already (dropped by hand during the grace period). */
export async function markOldColumnDropped(
  knex: Knex,
  stateSchema: string,
  migrationId: string,
  type: string,
): Promise<void> {
  await knex.raw(
    'UPDATE ??.migrations SET old_column_dropped_at = coalesce(old_column_dropped_at, now()), old_column_type = ?, updated_at = now() WHERE id = ?',
    [stateSchema, type, migrationId],
  );
}

/**
 * The recorded drop of the migration's old column, or null: no state store (plan before install), a store from
 * before schema v3, a migration not contracted, no drop recorded, or a recorded type Postgres no longer knows.
 * Runs inside the catalog probe's transaction, so it must not raise: the store's presence is checked first, and
 * the row is read as JSON so that a v2 store without the columns reads as "not recorded".
 */
export async function readDroppedOldColumn(
  trx: Knex.Transaction,
  stateSchema: string,
  migration: Migration,
): Promise<DroppedOldColumn | null> {
  const table = `${quoteIdent(stateSchema)}.migrations`;
  const present = (await trx.raw('SELECT to_regclass(?) IS NOT NULL AS present', [table])).rows[0] as {
    present: boolean;
  };
  if (!present.present) return null;
  const row = (
    await trx.raw(
      `SELECT m.phase, m.old_column AS "oldColumn", (to_jsonb(m) ->> 'old_column_dropped_at')::timestamptz AS "droppedAt",
            to_jsonb(m) ->> 'old_column_type' AS type
       FROM ${table} m WHERE m.id = ?`,
      [migration.id],
    )
  ).rows[0] as { phase: string; oldColumn: string | null; droppedAt: Date | null; type: string | null } | undefined;
  if (
    !row ||
    row.phase !== 'contracted' ||
    row.oldColumn !== migration.oldColumn ||
    row.droppedAt === null ||
    row.type === null
  )
    return null;
  // The type text is pasted into the probe's DDL: to_regtype() accepts exactly one type name and nothing more
  // (it raises on some malformed text, hence the savepoint, which keeps the probe's transaction usable).
  const known = await trx
    .transaction(
      async (sp) => (await sp.raw('SELECT to_regtype(?) IS NOT NULL AS known', [row.type])).rows[0].known as boolean,
    )
    .catch(() => false);
  return known ? { type: row.type, droppedAt: row.droppedAt } : null;
}
