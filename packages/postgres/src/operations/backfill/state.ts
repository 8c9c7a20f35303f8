import type { Knex } from 'knex';
import type { BackfillRange } from './types.js';
import { displayKeySql } from './keys.js';

/** Reads and writes of the state store's backfill bookkeeping (migrations.* backfill columns, backfill_ranges). */

interface RangeRow {
  worker: number;
  lower_key: unknown[] | null;
  upper_key: unknown[];
  checkpoint: unknown[] | null;
  lower_text: string | null;
  upper_text: string;
  checkpoint_text: string | null;
  done: boolean;
  rows_done: string;
  batches: string;
}

/** A range as the runner needs it: display values plus the exact jsonb texts it sends back to Postgres. */
export interface StoredRange extends BackfillRange {
  readonly lowerText: string | null;
  readonly upperText: string;
  readonly checkpointText: string | null;
}

export async function readRanges(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
): Promise<StoredRange[]> {
  const rows = (
    await db.raw(
      `SELECT worker, ${displayKeySql('lower_key')} AS lower_key, ${displayKeySql('upper_key')} AS upper_key,
            ${displayKeySql('checkpoint')} AS checkpoint,
            lower_key::text AS lower_text, upper_key::text AS upper_text, checkpoint::text AS checkpoint_text,
            done, rows_done, batches
       FROM ??.backfill_ranges WHERE migration_id = ? ORDER BY worker`,
      [stateSchema, migrationId],
    )
  ).rows as RangeRow[];
  return rows.map((r) => ({
    worker: r.worker,
    lowerKey: r.lower_key,
    upperKey: r.upper_key ?? [],
    checkpoint: r.checkpoint,
    done: r.done,
    rowsDone: Number(r.rows_done),
    batches: Number(r.batches),
    lowerText: r.lower_text,
    upperText: r.upper_text,
    checkpointText: r.checkpoint_text,
  }));
}

export interface MigrationBackfillRow {
  phase: string;
  tableSchema: string;
  tableName: string;
  rowsEstimate: number | null;
  rowsBackfilled: number;
  backfillStartedAt: Date | null;
  backfillCompletedAt: Date | null;
}

export async function readMigrationRow(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
): Promise<MigrationBackfillRow | undefined> {
  const row = (
    await db.raw(
      `SELECT phase, table_schema, table_name, rows_estimate, rows_backfilled, backfill_started_at, backfill_completed_at
       FROM ??.migrations WHERE id = ?`,
      [stateSchema, migrationId],
    )
  ).rows[0] as Record<string, unknown> | undefined;
  if (!row) return undefined;
  return {
    phase: row.phase as string,
    tableSchema: row.table_schema as string,
    tableName: row.table_name as string,
    rowsEstimate: row.rows_estimate === null ? null : Number(row.rows_estimate),
    rowsBackfilled: Number(row.rows_backfilled),
    backfillStartedAt: row.backfill_started_at as Date | null,
    backfillCompletedAt: row.backfill_completed_at as Date | null,
  };
}

/** Deletes the ranges (rollback, or a backfill to be started over) and zeroes the counters that described them. */
export async function resetRanges(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
): Promise<number> {
  const deleted = await db.raw<{ rowCount: number | null }>('DELETE FROM ??.backfill_ranges WHERE migration_id = ?', [
    stateSchema,
    migrationId,
  ]);
  await db.raw(
    "UPDATE ??.migrations SET rows_backfilled = 0, backfill_started_at = NULL, backfill_completed_at = NULL, backfill_overrides = '{}'::jsonb WHERE id = ?",
    [stateSchema, migrationId],
  );
  return deleted.rowCount ?? 0;
}

/**
 * The dual-write the migration is in (or last was): its phase version when it entered dual-write, i.e. the version
 * now minus the transitions recorded since the last one into dual-write (every version step is one recorded
 * transition). Null when no transition into dual-write is recorded. Ranges are bounded by the highest key at the
 * time every writer dual-writes, so ranges bounded in an earlier dual-write (stopped since) do not cover the rows
 * inserted while nobody wrote the new column, and must not be reused.
 */
export async function dualWriteEpoch(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
): Promise<number | null> {
  const row = (
    await db.raw(
      `SELECT m.version - (SELECT count(*) FROM ??.events e WHERE e.migration_id = m.id AND e.kind = 'transition' AND e.id > d.id) AS epoch
       FROM ??.migrations m,
            LATERAL (SELECT max(id) AS id FROM ??.events WHERE migration_id = m.id AND kind = 'transition' AND to_phase = 'dual-write') d
      WHERE m.id = ? AND d.id IS NOT NULL`,
      [stateSchema, stateSchema, stateSchema, migrationId],
    )
  ).rows[0] as { epoch: string } | undefined;
  return row === undefined ? null : Number(row.epoch);
}

/**
 * Deletes ranges bounded in another dual-write than `epoch` (ranges without an epoch, written before the state
 * store recorded one, are kept) and the counters that described them; the backfill's knobs stay. Returns how many.
 */
export async function dropStaleRanges(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
  epoch: number | null,
): Promise<number> {
  const deleted = await db.raw<{ rowCount: number | null }>(
    'DELETE FROM ??.backfill_ranges WHERE migration_id = ? AND dual_write_version IS NOT NULL AND dual_write_version IS DISTINCT FROM ?::bigint',
    [stateSchema, migrationId, epoch],
  );
  const n = deleted.rowCount ?? 0;
  if (n > 0) {
    await db.raw('DELETE FROM ??.backfill_ranges WHERE migration_id = ?', [stateSchema, migrationId]);
    await db.raw(
      'UPDATE ??.migrations SET rows_backfilled = 0, backfill_started_at = NULL, backfill_completed_at = NULL WHERE id = ?',
      [stateSchema, migrationId],
    );
  }
  return n;
}

/** Stamps when the backfill first started; a resumed run keeps the first time. */
export async function markBackfillStarted(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
): Promise<void> {
  await db.raw('UPDATE ??.migrations SET backfill_started_at = coalesce(backfill_started_at, now()) WHERE id = ?', [
    stateSchema,
    migrationId,
  ]);
}

/** Marks every range done at once: nothing to compute (a brand-new column with no expression). */
export async function markAllRangesDone(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
): Promise<void> {
  await db.raw('UPDATE ??.backfill_ranges SET done = true, updated_at = now() WHERE migration_id = ? AND NOT done', [
    stateSchema,
    migrationId,
  ]);
}

/** Records the completion time once every range is done; the phase is the engine's to move. */
export async function markBackfillCompleted(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
): Promise<boolean> {
  const row = (
    await db.raw(
      `UPDATE ??.migrations SET backfill_completed_at = coalesce(backfill_completed_at, now())
      WHERE id = ? AND EXISTS (SELECT 1 FROM ??.backfill_ranges WHERE migration_id = ?)
        AND NOT EXISTS (SELECT 1 FROM ??.backfill_ranges WHERE migration_id = ? AND NOT done)
     RETURNING backfill_completed_at`,
      [stateSchema, migrationId, stateSchema, migrationId, stateSchema, migrationId],
    )
  ).rows[0];
  return row !== undefined;
}
