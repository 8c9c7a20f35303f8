// The public surface of @phaseflag/testkit. Everything not exported here is internal.
export { resolveDatabase, LOCAL_DATABASE_URL } from './database/resolve-database.js';
export type { ResolvedDatabase, DatabaseKind } from './database/resolve-database.js';
export { withSearchPath } from './database/connection-string.js';

export { createSuiteSchema, suiteSchemaName } from './suite-schema.js';
export type { Suite, SuiteSchemaOptions, NewKnexOptions } from './suite-schema.js';

export { captureSpans } from './otel/capture-spans.js';
export type { SpanCapture, ReadableSpan } from './otel/capture-spans.js';
export { captureMetrics } from './otel/capture-metrics.js';
export type { MetricCapture, ResourceMetrics } from './otel/capture-metrics.js';

export { startLoad } from './load/start-load.js';
export type { LoadHandle, LoadReport, OpStats, ErrorSample, LoadOp, LoadOptions } from './load/start-load.js';

export { seedTable, seed } from './seed-table.js';
export type { SeedTableOptions, SeedColumns } from './seed-table.js';
export { waitFor, holdsFor } from './wait-for.js';
export type { WaitForOptions, HoldsForOptions } from './wait-for.js';
export { amountInput, createAmountTable, wrongAmountRows } from './amount-migration.js';

export { startReplica } from './replica/start-replica.js';
export type { ReplicaPair, StartReplicaOptions } from './replica/start-replica.js';
export { canStartReplica, replicaUnavailableReason, findPostgresBinDir } from './replica/postgres-binaries.js';
export { startPrivateServer, privateServerUnavailable } from './replica/private-server.js';
export type { PrivateServer, PrivateServerOptions } from './replica/private-server.js';
export { startPgBouncer, pgbouncerUnavailable, ensurePgBouncer, findPgBouncer } from './pooler/start-pgbouncer.js';
export type { PgBouncer, StartPgBouncerOptions } from './pooler/start-pgbouncer.js';

export { startUnleash } from './unleash/start-unleash.js';
export type { UnleashServer, StartUnleashOptions } from './unleash/start-unleash.js';
export { UnleashAdmin } from './unleash/unleash-admin.js';
export type {
  AdminFeature,
  AdminEnvironment,
  AdminStrategy,
  AdminTag,
  AdminRequestError,
  FlexibleRolloutInput,
} from './unleash/unleash-admin.js';

export { launchChromium, ensureChromium, findChromium, CHROMIUM_ARGS } from './browser/chromium.js';
export type { ChromiumSession } from './browser/chromium.js';

export { TestkitError } from './errors.js';

// Root hooks for mocha's `require` option: hold one database for the whole run.
export { mochaHooks } from './mocha-hooks.js';
