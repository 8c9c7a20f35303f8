export { Phaseflag, MigrationHandle, type PhaseflagOptions, type BackfillOptions, type MigrationStatus } from './engine.js';
export { KnexRouter, type KnexRouterOptions } from './knex-router.js';
export { createContext, DEFAULT_STATE_SCHEMA, type ExecutorContext, type ExecutorContextOptions } from './context.js';
export { resolveMigration } from './catalog.js';
export type { ResolvedMigration, ColumnInfo } from './resolved.js';
export { PostgresStateStore, notifyChannel, type MigrationRow, type EventRow, type InstanceRow, type InstanceReport } from './store/state-store.js';
export { installStateStore } from './store/installer.js';
export { LATEST_SCHEMA_VERSION } from './store/schema.js';
export type { MigrationPlan, BackfillProgress, BackfillResult, VerifyResult } from './operations.js';
