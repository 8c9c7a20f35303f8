/**
 * The public API of @phaseflag/postgres: what users may rely on. Everything else is internal; the `./internal`
 * entry exposes some of it to the phaseflag CLI and the tests, unstable and undocumented for users.
 */

// The executor, and what it hands out.
export { Phaseflag, type PhaseflagOptions } from './phaseflag.js';
export { MigrationHandle } from './api/handle.js';
export { KnexRouter, type KnexRouterOptions } from './router/knex-router.js';
export { Controller, type ControllerOptions, type ControllerMigrationStatus } from './controller/controller.js';
export { DEFAULT_STATE_SCHEMA } from './context.js';
export { describeTables, type CatalogDescription, type TableDescription } from './catalog/describe-tables.js';
export { GRANT_ROLES, grantStatements, isGrantRole, type GrantRole, type GrantTable } from './store/grants.js';
export type { StateStoreInfo } from './store/installer.js';

// What requests take and what status reports.
export type {
  AppliedTransition,
  BackfillOptions,
  BackfillRun,
  InstanceStatus,
  MigrationEvent,
  MigrationRecord,
  MigrationRef,
  MigrationStatus,
  ShadowStatus,
  StoredMigration,
  StoredVerifyResult,
  TransitionCause,
  TransitionOptions,
} from './types.js';
export type { MigrationInspection } from './transitions/facts.js';
export type { ReadOldOptions } from './transitions/reads.js';
export type { RepairResult } from './transitions/repair.js';
export type { SelectOptions, ReadMeaning } from './router/read-select.js';
export type { ShadowInstanceCounts, ShadowSummary } from './store/shadow-reads.js';
export type {
  ControllerEvent,
  ControllerRefusalEvent,
  ControllerTransitionEvent,
  ControllerLeaderEvent,
} from './controller/events.js';
export type { LeaderInfo } from './controller/leader.js';

// Results of the operations on the database.
export type { MigrationPlan, PhasePlan, PlanOptions, PlanPhase } from './operations/plan.js';
export type { PlannedStatement, LockMode } from './operations/planned-statement.js';
export type { LockWait, LockBlocker } from './context.js';
export type { BackfillProgress, BackfillRange, BackfillResult, BackfillStop } from './operations/backfill/types.js';
export type { BackfillKnobs, BackfillKnobsPatch } from './operations/backfill/knobs.js';
export type { BackfillRunner } from './operations/backfill/holder.js';
export type { VerifyResult, VerifyCheck } from './operations/verify.js';
export type {
  DdlWatchStatus,
  DriftFinding,
  DriftObject,
  DriftRepair,
  DriftReport,
  RecordedDdl,
  StoreDriftReport,
} from './operations/drift/types.js';
export type { PreflightOptions, PreflightResult, PreflightRow } from './operations/preflight.js';
export type { UnderivableRow, UnderivableSummary, UnderivableSource } from './operations/underivable/store.js';
export type { ResolvedMigration, ColumnInfo, RowKeyInfo } from './catalog/resolved.js';
export type { PartitionInfo } from './catalog/partitions.js';
export type { ResolvedReference } from './catalog/foreign-key.js';
export type { OldColumnDefault } from './catalog/default.js';
