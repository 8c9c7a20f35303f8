export * from './errors.js';
export {
  validateIdentifier,
  quoteIdent,
  parseQualifiedName,
  formatQualifiedName,
  type QualifiedName,
} from './identifiers.js';
export {
  defineMigration,
  objectName,
  type Migration,
  type MigrationIntent,
  type NewColumnSpec,
  type IndexSpec,
  type CheckSpec,
  type ForeignKeySpec,
  type FlagNames,
} from './migration.js';
export {
  migrationSchema,
  type MigrationInput,
  type BatchSettings,
  type ThrottleSettings,
  type DdlSettings,
  type ConstantDefault,
  type ShadowInput,
} from './migration-schema.js';
export {
  PHASES,
  ACTIONS,
  TRANSITIONS,
  decideTransition,
  ruleFor,
  isPhase,
  type Phase,
  type Action,
  type GuardFacts,
  type GuardResult,
  type InstanceFact,
  type TransitionRule,
  type TransitionDecision,
} from './phases.js';
export { writesBoth, isInFlight } from './phase-sets.js';
export {
  shadowRefusal,
  shadowMatchRate,
  SHADOW_SAMPLE_LIMIT,
  type ShadowFacts,
  type ShadowMismatch,
  type ShadowReport,
  type ShadowSettings,
} from './shadow.js';
export { StaticFlagSource, readFlagState, type FlagSource, type FlagContext, type FlagState } from './flags.js';
export { Router, Derived, readsNewColumn, type RouteDecision, type RouterOptions } from './router.js';
export {
  systemClock,
  silentLogger,
  type Clock,
  type InstanceReport,
  type Logger,
  type PhaseSnapshot,
  type RouterStore,
  type StateStore,
} from './ports.js';
export {
  TRACER_NAME,
  SPAN,
  ATTR,
  METRIC,
  SHADOW_EVENT,
  featureFlagAttributes,
  FEATURE_FLAG_ATTR,
  CONTROLLER_SPAN,
  CONTROLLER_ATTR,
} from './telemetry.js';
export {
  decideNext,
  PHASE_FLAGS,
  type PhaseFlag,
  type PhaseFlagStates,
  type ReconcileInput,
  type ControllerAction,
  type ControllerRefusalCode,
  type NextStep,
} from './next-step.js';
export {
  controllerSettingsSchema,
  parseControllerSettings,
  type ControllerSettings,
  type ControllerSettingsInput,
} from './controller-settings.js';
export { REDACTED, redactUrl, redactUrls, redactSecrets, type RedactOptions } from './redact.js';
