import { ROOT_CONTEXT, type SpanContext, type Tracer } from '@opentelemetry/api';
import {
  ATTR,
  CONTROLLER_ATTR,
  CONTROLLER_SPAN,
  featureFlagAttributes,
  PHASE_FLAGS,
  readFlagState,
  type FlagSource,
  type FlagState,
  type Logger,
  type Migration,
  type PhaseFlag,
  type PhaseFlagStates,
} from '@phaseflag/core';

const signature = (s: FlagState | undefined): string =>
  s === undefined ? '?' : `${s.enabled ? 1 : 0}${s.fullyOn ? 1 : 0}:${s.version ?? ''}`;

/**
 * Watches one migration's four phase flags for one leader: what each was last seen as, and the short
 * `phaseflag.flag.change` span emitted when it changed (the first sight after taking the lead counts as a
 * change), so that the transition the change causes can link to it.
 */
export class FlagObserver {
  private readonly seen = new Map<PhaseFlag, string>();
  private readonly causes = new Map<PhaseFlag, SpanContext>();
  private sourceFailed = false;

  constructor(
    private readonly migration: Migration,
    private readonly source: FlagSource,
    private readonly tracer: Tracer,
    private readonly logger: Logger,
    private readonly instanceId: string,
  ) {}

  key(flag: PhaseFlag): string {
    return this.migration.flags[flag];
  }

  /** Forgets what was seen (a new leadership starts from first sight). */
  reset(): void {
    this.seen.clear();
    this.causes.clear();
  }

  /** The span of the last change of `flag` this leader saw, if any. */
  cause(flag: PhaseFlag): SpanContext | undefined {
    return this.causes.get(flag);
  }

  /** Reads the four flags now; emits a change span for each that differs from the last read. */
  observe(leader: SpanContext | undefined): PhaseFlagStates {
    const states = {} as Record<PhaseFlag, FlagState | undefined>;
    for (const flag of PHASE_FLAGS) {
      const state = this.read(flag);
      states[flag] = state;
      const sig = signature(state);
      const before = this.seen.get(flag);
      if (before === sig || (before === undefined && state === undefined)) continue;
      this.seen.set(flag, sig);
      const span = this.tracer.startSpan(
        CONTROLLER_SPAN.flagChange,
        {
          root: true,
          links: leader ? [{ context: leader }] : [],
          attributes: {
            ...featureFlagAttributes(this.key(flag), state, this.source.name),
            [ATTR.migrationId]: this.migration.id,
            [CONTROLLER_ATTR.flagRole]: flag,
            [CONTROLLER_ATTR.instanceId]: this.instanceId,
            ...(state ? { [CONTROLLER_ATTR.fullyOn]: state.fullyOn } : {}),
          },
        },
        ROOT_CONTEXT,
      );
      span.end();
      this.causes.set(flag, span.spanContext());
    }
    return states;
  }

  private read(flag: PhaseFlag): FlagState | undefined {
    try {
      const state = readFlagState(this.source, this.key(flag));
      this.sourceFailed = false;
      return state;
    } catch (error) {
      // A source that throws is a source that does not know: never move on it. Said once per failure streak.
      if (!this.sourceFailed)
        this.logger.warn(`phaseflag: flag source "${this.source.name}" failed; treating flags as unknown`, {
          error: (error as Error).message,
        });
      this.sourceFailed = true;
      return undefined;
    }
  }
}
