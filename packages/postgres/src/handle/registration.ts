import { isInFlight } from '@phaseflag/core';
import type { MigrationHandle } from '../migration-handle.js';
import type { ResolvedMigration } from '../resolved.js';
import type { MigrationRow } from '../store/state-store.js';
import { canonical, definitionChangedError, definitionChanges } from './definition.js';

/**
 * Records the declaration in the state store (phase `pending` when new). What the migration does may not change
 * while it is in flight or contracted (see definition.ts); its operational settings may change at any time.
 */
export async function registerResolved(h: MigrationHandle, r: ResolvedMigration): Promise<MigrationRow> {
  const store = h.pf.store;
  const declared = h.migration as unknown as Record<string, unknown>;
  const row = await store.register({
    id: h.id, table_schema: r.schema, table_name: r.table, old_column: h.migration.oldColumn, new_column: h.migration.newColumn.name,
    definition: declared,
  });
  const moved = row.table_schema !== r.schema || row.table_name !== r.table || row.old_column !== h.migration.oldColumn || row.new_column !== h.migration.newColumn.name;
  const changes = definitionChanges(row.definition, declared);
  if (moved || changes.length > 0) {
    if (isInFlight(row.phase) || row.phase === 'contracted') {
      throw definitionChangedError(h, row, changes.length > 0 ? changes : [`table: ${row.table_schema}.${row.table_name} → ${r.schema}.${r.table}`]);
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
