import { isInFlight, shadowMatchRate, shadowRefusal, StateError, type GuardFacts } from '@phaseflag/core';
import { assertStateStoreReadable, readStateStoreInfo } from '../store/installer.js';
import { definitionChangedError, definitionChanges } from './definition.js';
import { resolveScope, type MigrationScope } from './scope.js';
import type { InstanceStatus, MigrationRecord, MigrationStatus } from '../types.js';
import { toMigrationEvent, toMigrationRecord } from './records.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import type { MigrationRow } from '../store/rows.js';
import { registerResolved } from './register.js';
import { inspectDrift } from '../operations/drift/inspect.js';
import { underivableSummary } from '../operations/underivable/store.js';
import { backfillProgress } from '../operations/backfill/progress.js';
import { syncTriggerInstalled } from '../operations/steps/sync-trigger.js';
import { lastShadowVersion, shadowFacts, shadowSummary } from '../store/shadow-reads.js';
import type { ShadowStatus } from '../types.js';

export async function migrationStatus(scope: MigrationScope): Promise<MigrationStatus> {
  const { ctx, store } = scope;
  await assertStateStoreReadable(ctx);
  const row = await store.get(scope.id);
  if (!row) {
    throw new StateError('PF_UNKNOWN_MIGRATION', `Migration "${scope.id}" is not in the state store.`, {
      value: scope.id,
      migrationId: scope.id,
      hint: 'Run expand (or register) first.',
    });
  }
  const [progress, instances, events, underivable, drift, shadow] = await Promise.all([
    backfillProgress(ctx, scope.id).catch(() => null),
    store.instances(scope.id, scope.instanceTtlMs),
    store.events(scope.id, 50),
    underivableSummary(ctx, scope.id),
    inspectDrift(scope, scope.migration),
    shadowStatus(scope, row),
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
    drift,
    shadow,
  };
}

/**
 * Shadow reads as status shows them: in `verified`, the counts of this `verified` (what the read-new guard sums);
 * in any other phase, those of the last `verified` that had any. Null when the migration declares no shadow.
 */
async function shadowStatus(scope: MigrationScope, row: MigrationRow): Promise<ShadowStatus | null> {
  const settings = scope.migration.shadow;
  if (settings === null) return null;
  const { knex, stateSchema } = scope.ctx;
  const active = row.phase === 'verified';
  const version = active ? row.version : ((await lastShadowVersion(knex, stateSchema, scope.id)) ?? row.version);
  const summary = await shadowSummary(knex, stateSchema, scope.id, version);
  const refusal = shadowRefusal(shadowFacts(settings, summary));
  return {
    ...settings,
    ...summary,
    active,
    matchRate: shadowMatchRate(summary.compared, summary.mismatched),
    readNewAllowed: refusal === null,
    reason: refusal?.reason ?? null,
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
  const shadow = scope.migration.shadow;
  const [triggerInstalled, progress, instances, conflicts, underivable, shadowCounts] = await Promise.all([
    syncTriggerInstalled(ctx, r),
    backfillProgress(ctx, scope.id).catch(() => null),
    store.instances(scope.id, scope.instanceTtlMs),
    store.conflicts(scope.id, r.schema, r.table, cols),
    underivableSummary(ctx, scope.id, 1),
    // Only `verified` has shadow reads: each one counts afresh (its phase version).
    shadow && row.phase === 'verified' ? shadowSummary(ctx.knex, ctx.stateSchema, scope.id, row.version) : null,
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
    ...(shadow && shadowCounts ? { shadow: shadowFacts(shadow, shadowCounts) } : {}),
    ...extra,
  };
}

/** What `inspect()` returns: the record, the guard facts as a transition would read them now, every instance. */
export interface MigrationInspection {
  readonly record: MigrationRecord;
  readonly facts: GuardFacts;
  readonly instances: InstanceStatus[];
}

/**
 * `register: false` reads only (what `status` uses): nothing is installed, registered or updated; a migration the
 * store does not know yet (or with no store installed at all) is reported as `pending` at version 0, and a declaration that changed what an in-flight
 * migration does is refused as registering it would be.
 */
export async function inspectMigration(
  scope: MigrationScope,
  options: { register?: boolean } = {},
): Promise<MigrationInspection> {
  const installed = options.register !== false || (await readStateStoreInfo(scope.ctx)).installed;
  if (options.register === false && installed) await assertStateStoreReadable(scope.ctx);
  const r = await resolveScope(scope);
  if (!installed) {
    // No state store yet: the migration is pending everywhere; the guards read the catalog only.
    const row = unregisteredRow(scope, r);
    const facts: GuardFacts = {
      phase: 'pending',
      newColumnReady: r.newColumnExists,
      triggerInstalled: await syncTriggerInstalled(scope.ctx, r),
      nothingToSync:
        scope.migration.backfill === null && (scope.migration.reverse === null || scope.migration.oldColumn === null),
      liveInstances: [],
      backfillComplete: false,
      verify: null,
      confirmed: false,
      conflicts: [],
      underivable: { count: 0, firstKey: null, stoppedBackfill: 0 },
    };
    return { record: toMigrationRecord(row), facts, instances: [] };
  }
  const row = options.register === false ? await readOnlyRow(scope, r) : await registerResolved(scope, r);
  const [facts, instances] = await Promise.all([
    guardFacts(scope, row, r, {}),
    scope.store.instances(scope.id, scope.instanceTtlMs),
  ]);
  return { record: toMigrationRecord(row), facts, instances };
}

async function readOnlyRow(scope: MigrationScope, r: ResolvedMigration): Promise<MigrationRow> {
  const row = await scope.store.get(scope.id);
  if (!row) return unregisteredRow(scope, r);
  const changes = definitionChanges(row.definition, scope.migration as unknown as Record<string, unknown>);
  if (changes.length > 0 && (isInFlight(row.phase) || row.phase === 'contracted'))
    throw definitionChangedError(scope, row, changes);
  return row;
}

/** What registering would record, without recording it. */
function unregisteredRow(scope: MigrationScope, r: ResolvedMigration): MigrationRow {
  const now = new Date();
  return {
    id: scope.id,
    table_schema: r.schema,
    table_name: r.table,
    old_column: scope.migration.oldColumn,
    new_column: scope.migration.newColumn.name,
    definition: scope.migration as unknown as Record<string, unknown>,
    phase: 'pending',
    version: 0,
    created_new_column: false,
    rows_estimate: null,
    rows_backfilled: 0,
    backfill_started_at: null,
    backfill_completed_at: null,
    verify_result: null,
    verified_at: null,
    backfill_overrides: {},
    old_column_dropped_at: null,
    old_column_type: null,
    preflight_result: null,
    reads_held_at: null,
    verified_lsn: null,
    updated_by: null,
    updated_at: now,
    created_at: now,
  };
}
