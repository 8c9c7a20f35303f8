import { createHash } from 'node:crypto';
import type { FlagState } from '@phaseflag/core';

/** The shape of a flag as unleash-client holds it (its `FeatureInterface`), reduced to what we read. */
export interface FlagDefinition {
  name: string;
  enabled: boolean;
  project?: string;
  strategies?: ReadonlyArray<StrategyDefinition>;
  variants?: ReadonlyArray<unknown>;
  dependencies?: ReadonlyArray<unknown>;
}

export interface StrategyDefinition {
  name: string;
  parameters?: Readonly<Record<string, unknown>>;
  constraints?: ReadonlyArray<unknown>;
  segments?: ReadonlyArray<unknown>;
  variants?: ReadonlyArray<unknown>;
  disabled?: boolean | null;
}

const versions = new WeakMap<FlagDefinition, string>();

/**
 * A short content hash of the definition, for `feature_flag.version`. unleash-client replaces a definition object
 * whenever its data changes, so the hash is cached per object and changes exactly when the flag does.
 */
export function definitionVersion(definition: FlagDefinition): string {
  let version = versions.get(definition);
  if (version === undefined) {
    version = createHash('sha256').update(JSON.stringify(definition)).digest('hex').slice(0, 12);
    versions.set(definition, version);
  }
  return version;
}

/**
 * On for every request, whatever its context. unleash-client turns an enabled flag with no strategies on for
 * everyone; otherwise one strategy must admit everyone: `default` ("Standard"), or a gradual rollout at 100% with
 * stickiness `default` or `random`, with no constraints and no segments. A flag with a parent
 * dependency is not fully on: its parent decides per request.
 */
export function isFullyOn(definition: FlagDefinition): boolean {
  if (!definition.enabled) return false;
  if (definition.dependencies !== undefined && definition.dependencies.length > 0) return false;
  const strategies = (definition.strategies ?? []).filter((s) => s.disabled !== true);
  if (strategies.length === 0) return (definition.strategies ?? []).length === 0;
  return strategies.some(admitsEveryone);
}

function admitsEveryone(strategy: StrategyDefinition): boolean {
  if ((strategy.constraints?.length ?? 0) > 0 || (strategy.segments?.length ?? 0) > 0) return false;
  const p = strategy.parameters ?? {};
  switch (strategy.name) {
    case 'default':
      return true;
    case 'flexibleRollout':
      // Stickiness on a context field (userId, sessionId, …) skips requests without that field, even at 100%.
      return (
        Number(p.rollout) === 100 &&
        (p.stickiness === undefined || p.stickiness === '' || p.stickiness === 'default' || p.stickiness === 'random')
      );
    case 'gradualRolloutUserId':
    case 'gradualRolloutSessionId':
    case 'gradualRolloutRandom':
      // Legacy strategies: userId/sessionId ones skip requests without that id, so only random admits everyone.
      return strategy.name === 'gradualRolloutRandom' && Number(p.percentage) === 100;
    default:
      return false;
  }
}

/** A partial rollout: some strategy admits a share of requests by bucket. */
export function isSplit(definition: FlagDefinition): boolean {
  return (definition.strategies ?? []).some(
    (s) => s.name === 'flexibleRollout' && Number(s.parameters?.rollout) > 0 && Number(s.parameters?.rollout) < 100,
  );
}

export function hasVariants(definition: FlagDefinition): boolean {
  return (
    (definition.variants?.length ?? 0) > 0 || (definition.strategies ?? []).some((s) => (s.variants?.length ?? 0) > 0)
  );
}

export function toFlagState(definition: FlagDefinition): FlagState {
  return { enabled: definition.enabled, fullyOn: isFullyOn(definition), version: definitionVersion(definition) };
}
