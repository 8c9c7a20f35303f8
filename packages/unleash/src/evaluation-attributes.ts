import type { Attributes } from '@opentelemetry/api';
import type { FlagContext } from '@phaseflag/core';

/**
 * OpenTelemetry feature-flag semantic conventions (the current names; never the deprecated
 * `feature_flag.provider_name`, `feature_flag.variant` or `feature_flag.evaluation.reason`).
 */
export const FEATURE_FLAG = {
  key: 'feature_flag.key',
  value: 'feature_flag.result.value',
  variant: 'feature_flag.result.variant',
  reason: 'feature_flag.result.reason',
  provider: 'feature_flag.provider.name',
  contextId: 'feature_flag.context.id',
  setId: 'feature_flag.set.id',
  version: 'feature_flag.version',
  errorMessage: 'feature_flag.error.message',
  errorType: 'error.type',
} as const;

/** `feature_flag.result.reason` values (lower case, as the conventions list them). */
export type EvaluationReason =
  'static' | 'default' | 'targeting_match' | 'split' | 'cached' | 'disabled' | 'unknown' | 'stale' | 'error';

/** `error.type` values the conventions name for flag evaluation. */
export type EvaluationErrorType =
  'flag_not_found' | 'provider_not_ready' | 'provider_fatal' | 'type_mismatch' | 'invalid_context' | 'general';

export interface EvaluationFacts {
  provider: string;
  reason?: EvaluationReason;
  variant?: string;
  version?: string;
  setId?: string;
  error?: { type?: EvaluationErrorType; message: string };
}

/** The attributes for one evaluation of `flag` for `context` that returned `value` (undefined: unknown). */
export function buildEvaluationAttributes(
  flag: string,
  context: FlagContext | undefined,
  value: boolean | undefined,
  facts: EvaluationFacts,
): Attributes {
  const attributes: Attributes = { [FEATURE_FLAG.key]: flag, [FEATURE_FLAG.provider]: facts.provider };
  const contextId = context?.userId ?? context?.sessionId;
  if (contextId !== undefined) attributes[FEATURE_FLAG.contextId] = contextId;
  if (value !== undefined) attributes[FEATURE_FLAG.value] = value;
  if (facts.reason !== undefined) attributes[FEATURE_FLAG.reason] = facts.reason;
  if (facts.variant !== undefined) attributes[FEATURE_FLAG.variant] = facts.variant;
  if (facts.version !== undefined) attributes[FEATURE_FLAG.version] = facts.version;
  if (facts.setId !== undefined) attributes[FEATURE_FLAG.setId] = facts.setId;
  if (facts.error !== undefined) {
    if (facts.error.type !== undefined) attributes[FEATURE_FLAG.errorType] = facts.error.type;
    attributes[FEATURE_FLAG.errorMessage] = facts.error.message;
  }
  return attributes;
}
