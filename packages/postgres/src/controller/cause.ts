import type { Link } from '@opentelemetry/api';
import { CONTROLLER_ATTR, featureFlagAttributes, type PhaseFlag, type PhaseFlagStates } from '@phaseflag/core';
import type { TransitionCause } from '../types.js';
import type { ControllerEvent } from './events.js';
import type { Tracked } from './tracked.js';

/** Who is asking: the controller's instance id, its flag source's provider name and its event sink. */
export interface CauseSource {
  readonly instanceId: string;
  readonly provider: string;
  readonly emit: (event: ControllerEvent) => void;
}

/** Links (the leadership, the flag change), feature-flag attributes and an event detail for what a step does. */
export function stepCause(
  t: Tracked,
  flag: PhaseFlag | null,
  flags: PhaseFlagStates,
  why: string,
  { instanceId, provider, emit }: CauseSource,
): TransitionCause {
  const links: Link[] = [];
  const leader = t.leaderSpan?.spanContext();
  if (leader) links.push({ context: leader, attributes: { [CONTROLLER_ATTR.cause]: 'leader' } });
  const change = flag ? t.flags.cause(flag) : undefined;
  if (change) links.push({ context: change, attributes: { [CONTROLLER_ATTR.cause]: 'flag-change' } });
  const attributes = flag ? featureFlagAttributes(t.flags.key(flag), flags[flag], provider) : {};
  return {
    links,
    onApplied: (a) =>
      emit({ kind: 'transition', migrationId: t.handle.id, ...a, flag: flag ? t.flags.key(flag) : null }),
    attributes: { ...attributes, [CONTROLLER_ATTR.instanceId]: instanceId },
    detail: {
      controller: instanceId,
      why,
      ...(flag
        ? {
            flag: t.flags.key(flag),
            flagEnabled: flags[flag]?.enabled ?? null,
            flagFullyOn: flags[flag]?.fullyOn ?? null,
          }
        : {}),
    },
  };
}
