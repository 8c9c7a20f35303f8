import type { MigrationEvent, MigrationRecord } from '../types.js';
import type { EventRow, MigrationRow } from '../store/rows.js';

/** The store's rows as the public API names them: the column names stay in the store. */
export function toMigrationRecord(row: MigrationRow): MigrationRecord {
  return {
    id: row.id,
    tableSchema: row.table_schema,
    tableName: row.table_name,
    oldColumn: row.old_column,
    newColumn: row.new_column,
    definition: row.definition,
    phase: row.phase,
    version: row.version,
    createdNewColumn: row.created_new_column,
    rowsEstimate: row.rows_estimate,
    rowsBackfilled: row.rows_backfilled,
    backfillStartedAt: row.backfill_started_at,
    backfillCompletedAt: row.backfill_completed_at,
    verifyResult: row.verify_result,
    verifiedAt: row.verified_at,
    backfillKnobs: row.backfill_overrides ?? {},
    oldColumnDroppedAt: row.old_column_dropped_at,
    oldColumnType: row.old_column_type,
    preflight: row.preflight_result,
    readsHeldAt: row.reads_held_at,
    verifiedLsn: row.verified_lsn ?? null,
    updatedBy: row.updated_by,
    updatedAt: row.updated_at,
    createdAt: row.created_at,
  };
}

export function toMigrationEvent(row: EventRow): MigrationEvent {
  return {
    id: row.id,
    migrationId: row.migration_id,
    at: row.at,
    kind: row.kind,
    action: row.action,
    fromPhase: row.from_phase,
    toPhase: row.to_phase,
    actor: row.actor,
    reason: row.reason,
    detail: row.detail,
  };
}
