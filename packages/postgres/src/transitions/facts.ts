import { StateError, type GuardFacts } from '@phaseflag/core';
import { resolveScope, type MigrationScope } from './scope.js';
import type { InstanceStatus, MigrationRecord, MigrationStatus } from '../types.js';
import { toMigrationEvent, toMigrationRecord } from './records.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import type { MigrationRow } from '../store/rows.js';
import { registerResolved } from './register.js';
import { underivableSummary } from '../operations/underivable/store.js';
import { backfillProgress } from '../operations/backfill/progress.js';
import { syncTriggerInstalled } from '../operations/steps/sync-trigger.js';

export async function migrationStatus(scope: MigrationScope): Promise<MigrationStatus> {
  const { ctx, store } = scope;
  const row = await store.get(scope.id);
  if (!row) {
    throw new StateError('PF_UNKNOWN_MIGRATION', `Migration "${scope.id}" is not in the state store.`, {
      value: scope.id,
      migrationId: scope.id,
      hint: 'Run expand (or register) first.',
    });
  }
  const [progress, instances, events, underivable] = await Promise.all([
    backfillProgress(ctx, scope.id).catch(() => null),
    store.instances(scope.id, scope.instanceTtlMs),
    store.events(scope.id, 50),
    underivableSummary(ctx, scope.id),
  ]);
  return {
    id: scope.id,
    phase: row.phase,
    version: row.version,
    record: toMigrationRecord(row),
    progress,
    instances,
    events: events.map(toMigrationEvent),
    underivable,
  };
}

/** What the guards decide from: the stored row, the live catalog, the backfill's ranges and the live instances. */
export async function guardFacts(
  scope: MigrationScope,
  row: MigrationRow,
  r: ResolvedMigration,
  extra: Partial<GuardFacts>,
): Promise<GuardFacts> {
  const { ctx, store } = scope;
  const cols = [scope.migration.newColumn.name, ...(scope.migration.oldColumn ? [scope.migration.oldColumn] : [])];
  const [triggerInstalled, progress, instances, conflicts, underivable] = await Promise.all([
    syncTriggerInstalled(ctx, r),
    backfillProgress(ctx, scope.id).catch(() => null),
    store.instances(scope.id, scope.instanceTtlMs),
    store.conflicts(scope.id, r.schema, r.table, cols),
    underivableSummary(ctx, scope.id, 1),
  ]);
  const verifiedAfterBackfill =
    row.verified_at !== null && row.backfill_completed_at !== null && row.verified_at >= row.backfill_completed_at;
  return {
    phase: row.phase,
    newColumnReady: r.newColumnExists,
    triggerInstalled,
    nothingToSync:
      scope.migration.backfill === null && (scope.migration.reverse === null || scope.migration.oldColumn === null),
    liveInstances: instances.filter((i) => i.live),
    backfillComplete: progress?.done === true,
    verify: row.verify_result
      ? {
          clean: row.verify_result.clean,
          mismatches: row.verify_result.mismatches,
          afterBackfill: verifiedAfterBackfill,
        }
      : null,
    confirmed: false,
    conflicts,
    underivable: {
      count: underivable.count,
      firstKey: underivable.rows[0]?.key ?? null,
      stoppedBackfill: underivable.stoppedBackfill,
    },
    ...extra,
  };
}

/** What `inspect()` returns: the record, the guard facts as a transition would read them now, every instance. */
export interface MigrationInspection {
  readonly record: MigrationRecord;
  readonly facts: GuardFacts;
  readonly instances: InstanceStatus[];
}

export async function inspectMigration(scope: MigrationScope): Promise<MigrationInspection> {
  const r = await resolveScope(scope);
  const row = await registerResolved(scope, r);
  const [facts, instances] = await Promise.all([
    guardFacts(scope, row, r, {}),
    scope.store.instances(scope.id, scope.instanceTtlMs),
  ]);
  return { record: toMigrationRecord(row), facts, instances };
}
