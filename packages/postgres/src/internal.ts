/**
 * UNSTABLE. The phaseflag CLI's, the benchmark's and the tests' way behind the public API: the executor's context
 * and state store, and the operations the handle guards. Anything here may change or go in any release; code
 * outside this repository should use the package's main entry. Calling these skips the phase guards.
 */
export { internalsOf, type PhaseflagInternals } from './phaseflag.js';
export { createContext, type ExecutorContext, type ExecutorContextOptions } from './context.js';
export { resolveMigration, type ResolveOptions } from './catalog/resolve.js';
export { PostgresStateStore, notifyChannel } from './store/state-store.js';
export type { MigrationRow, EventRow, InstanceRow } from './store/rows.js';
export { installStateStore } from './store/installer.js';
export { LATEST_SCHEMA_VERSION } from './store/schema.js';
export { runDdl, type RunDdlOptions, type DdlOutcome } from './operations/ddl.js';
export { planMigration, planResolved } from './operations/plan.js';
export { strongerLock } from './operations/planned-statement.js';
export type { Step, StepOptions } from './operations/steps/step.js';
export {
  expandSteps,
  dualWriteSteps,
  contractStepsBefore,
  contractStepsAfter,
  rollbackSteps,
  applySteps,
} from './operations/steps/phase-steps.js';
export { syncTriggerInstalled } from './operations/steps/sync-trigger.js';
export {
  prepareBackfill,
  runBackfill,
  backfillProgress,
  resetBackfill,
  BACKFILL_ATTR,
} from './operations/backfill/index.js';
export type { BackfillRunOptions, BackfillPlanInfo } from './operations/backfill/index.js';
export { setBackfillKnobs, readBackfillKnobs, knobsChannel } from './operations/backfill/knobs.js';
export { findBackfillRunner } from './operations/backfill/holder.js';
export { verifyMigration, type VerifyOptions } from './operations/verify.js';
export { runPreflight } from './operations/preflight.js';
export { underivableSummary } from './operations/underivable/store.js';
export { detectTransactionPooler, connectionTarget } from './driver/pooler.js';
export { advisoryKey, advisoryLockHolder } from './driver/advisory.js';
export {
  generateSqlMigration,
  SQL_FILE_ACTOR,
  type SqlMigration,
  type SqlMigrationPart,
} from './operations/generate-sql.js';
export { ddlWatchTriggerNames, ddlWatchStatus, ensureDdlWatch, DDL_WATCH_VERSION } from './store/ddl-watch.js';
export { OWN_DDL_MARK } from './store/ddl-watch-sql.js';
export { ADVANCING_STEPS, driftError, driftRefusal } from './operations/drift/refusal.js';
// `phaseflag rehearse`: the copy of a table from a source, the synthetic application, the engine's spans read back.
export {
  describeTableDefinition,
  type TableDefinition,
  type CopyStatement,
  type ParentTable,
  type TableRef,
} from './operations/rehearse/copy-definition.js';
export { copyTable, type CopyTableOptions, type CopyTableResult } from './operations/rehearse/copy-table.js';
export {
  SyntheticTraffic,
  sampleTableActivity,
  trafficKeys,
  type TableActivity,
  type TrafficOptions,
  type TrafficSample,
} from './operations/rehearse/traffic.js';
export { SpanRecorder, type RecordedSpan } from './telemetry/span-recorder.js';
