import { isInFlight, PhaseflagError, type Migration } from '@phaseflag/core';
import type { MigrationHandle } from '../migration-handle.js';
import type { ResolvedMigration } from '../resolved.js';
import type { MigrationRow } from '../store/state-store.js';

/**
 * Records the declaration in the state store (phase `pending` when new). What the migration does may not change
 * while it is in flight or contracted; its operational settings may change at any time.
 */
export async function registerResolved(h: MigrationHandle, r: ResolvedMigration): Promise<MigrationRow> {
  const store = h.pf.store;
  const declared = h.migration as unknown as Record<string, unknown>;
  const row = await store.register({
    id: h.id, table_schema: r.schema, table_name: r.table, old_column: h.migration.oldColumn, new_column: h.migration.newColumn.name,
    definition: declared,
  });
  if (row.table_schema !== r.schema || row.table_name !== r.table || row.old_column !== h.migration.oldColumn || row.new_column !== h.migration.newColumn.name
    || canonical(shape(row.definition)) !== canonical(shape(declared))) {
    if (isInFlight(row.phase) || row.phase === 'contracted') {
      throw new PhaseflagError('PF_DEFINITION_CHANGED', `Migration "${h.id}" is ${row.phase} but its declaration changed (table, columns, type or expressions).`, {
        value: { stored: shape(row.definition), declared: shape(declared) }, migrationId: h.id,
        hint: 'Roll it back before changing what it does, or declare a new migration with a new id.',
      });
    }
    await store.update(h.id, {
      definition: JSON.stringify(h.migration), table_schema: r.schema, table_name: r.table, old_column: h.migration.oldColumn, new_column: h.migration.newColumn.name,
    });
  } else if (canonical(row.definition) !== canonical(h.migration)) {
    // Operational settings (batch size, throttle, flags) may change at any time.
    await store.updateDefinition(h.id, declared);
  }
  return (await store.get(h.id))!;
}

/** JSON with sorted keys: jsonb does not keep key order, so stored and declared definitions compare by content. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

/** What a migration does (as opposed to how fast): the part that may not change while it is in flight. */
function shape(def: Record<string, unknown>): unknown {
  const d = def as unknown as Migration;
  return { table: d.table, primaryKey: d.primaryKey, oldColumn: d.oldColumn, intent: d.intent ?? 'replace', newColumn: d.newColumn, backfill: d.backfill, reverse: d.reverse, sync: d.sync };
}
