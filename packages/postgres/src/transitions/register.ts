import { ConflictError, isInFlight, objectName } from '@phaseflag/core';
import type { MigrationScope } from './scope.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import type { MigrationRow } from '../store/rows.js';
import { canonical, definitionChangedError, definitionChanges } from './definition.js';

/**
 * Records the declaration in the state store (phase `pending` when new). What the migration does may not change
 * while it is in flight or contracted (see definition.ts); its operational settings may change at any time.
 */
export async function registerResolved(scope: MigrationScope, r: ResolvedMigration): Promise<MigrationRow> {
  const store = scope.store;
  const declared = scope.migration as unknown as Record<string, unknown>;
  if ((await store.get(scope.id)) === null) await assertNoNamesake(scope);
  const row = await store.register({
    id: scope.id,
    table_schema: r.schema,
    table_name: r.table,
    old_column: scope.migration.oldColumn,
    new_column: scope.migration.newColumn.name,
    definition: declared,
  });
  const moved =
    row.table_schema !== r.schema ||
    row.table_name !== r.table ||
    row.old_column !== scope.migration.oldColumn ||
    row.new_column !== scope.migration.newColumn.name;
  const changes = definitionChanges(row.definition, declared);
  if (moved || changes.length > 0) {
    if (isInFlight(row.phase) || row.phase === 'contracted') {
      throw definitionChangedError(
        scope,
        row,
        changes.length > 0 ? changes : [`table: ${row.table_schema}.${row.table_name} → ${r.schema}.${r.table}`],
      );
    }
    await store.update(scope.id, {
      definition: JSON.stringify(scope.migration),
      table_schema: r.schema,
      table_name: r.table,
      old_column: scope.migration.oldColumn,
      new_column: scope.migration.newColumn.name,
    });
  } else if (canonical(row.definition) !== canonical(scope.migration)) {
    // Operational settings (batch size, throttle, flags) may change at any time.
    await store.updateDefinition(scope.id, declared);
  }
  return (await store.get(scope.id))!;
}

/**
 * The sync function, trigger and helper constraints are named from the id with every character but letters,
 * digits and _ made _ (objectName): `orders-amount`, `orders.amount` and `orders_amount` would share them, and one
 * migration's rollback would drop the other's trigger. A new id whose names a recorded migration (not rolled
 * back) already derives is refused before anything is recorded.
 */
async function assertNoNamesake(scope: MigrationScope): Promise<void> {
  const mine = objectName('pf_sync', scope.id);
  const namesake = (await scope.store.ids()).find(
    (m) => m.id !== scope.id && m.phase !== 'rolled-back' && objectName('pf_sync', m.id) === mine,
  );
  if (!namesake) return;
  throw new ConflictError(
    'PF_MIGRATION_CONFLICT',
    `Migration id "${scope.id}" derives the same object names (${mine}) as the recorded migration "${namesake.id}" (${namesake.phase}).`,
    {
      value: scope.id,
      migrationId: scope.id,
      hint: `Give this migration an id that differs from "${namesake.id}" in more than -, . and _ (object names keep letters, digits and _ only).`,
    },
  );
}
