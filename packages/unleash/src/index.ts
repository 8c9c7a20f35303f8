// The public surface of @phaseflag/unleash. Everything not exported here is internal.
export { UnleashFlagSource } from './unleash-flag-source.js';
export { destroyClient } from './destroy-client.js';
export type { UnleashFlagSourceOptions } from './source-options.js';
export type { FreshnessStatus as UnleashSourceStatus, DataOrigin } from './freshness.js';

export { OpenFeatureFlagSource, toEvaluationContext } from './openfeature-flag-source.js';
export type { OpenFeatureFlagSourceOptions } from './openfeature-flag-source.js';

export { FEATURE_FLAG, buildEvaluationAttributes } from './evaluation-attributes.js';
export type { EvaluationReason, EvaluationErrorType, EvaluationFacts } from './evaluation-attributes.js';
export { isFullyOn, toFlagState, definitionVersion } from './flag-state.js';
export type { FlagDefinition, StrategyDefinition } from './flag-state.js';

export { provisionFlags } from './provision.js';
export type { ProvisionAdminOptions, ProvisionReport, ProvisionedFlag } from './provision.js';
export { describeFlag, migrationTag, type ProvisionedRole } from './flag-descriptions.js';
export { UnleashFlagAdmin } from './flag-admin.js';

export { UnleashUnavailableError, UnleashRejectedError } from './errors.js';
