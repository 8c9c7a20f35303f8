/**
 * Flags arrive through a FlagSource. `undefined` means unknown (not fetched yet, source unreachable): callers
 * treat unknown as the safe side, never as on.
 */
export interface FlagContext {
  readonly userId?: string;
  readonly sessionId?: string;
  readonly remoteAddress?: string;
  readonly properties?: Readonly<Record<string, string>>;
}

/** What a source knows of a flag as a whole, independent of any one request (the operator's intent). */
export interface FlagState {
  /** On in this environment: at least some requests may get it. */
  readonly enabled: boolean;
  /** Every request gets it (on, 100% rollout, no constraints), as far as the source can tell. */
  readonly fullyOn: boolean;
  /** The source's revision of its flag data, for telemetry (`feature_flag.version`). */
  readonly version?: string;
}

export interface FlagSource {
  /** Provider name for telemetry (`feature_flag.provider.name`). */
  readonly name: string;
  /** Per request; `undefined` when unknown (not fetched yet, unreachable, no such flag). */
  isEnabled(flag: string, context?: FlagContext): boolean | undefined;
  /** The flag as a whole; `undefined` when unknown. Controllers read intent from it. */
  state?(flag: string): FlagState | undefined;
  /** Called with the flag names whenever the source learns of a change; returns an unsubscribe function. */
  onChange?(listener: (flags: readonly string[]) => void): () => void;
}

/** Flags held in memory and set by code: for tests, scripts and services without a flag service. */
export class StaticFlagSource implements FlagSource {
  readonly name = 'static';
  private readonly values = new Map<string, boolean>();
  private readonly listeners = new Set<(flags: readonly string[]) => void>();

  constructor(initial: Readonly<Record<string, boolean>> = {}) {
    for (const [k, v] of Object.entries(initial)) this.values.set(k, v);
  }

  isEnabled(flag: string): boolean | undefined {
    return this.values.get(flag);
  }

  state(flag: string): FlagState | undefined {
    const v = this.values.get(flag);
    return v === undefined ? undefined : { enabled: v, fullyOn: v };
  }

  set(flag: string, value: boolean | undefined): void {
    if (value === undefined) this.values.delete(flag);
    else this.values.set(flag, value);
    for (const l of this.listeners) l([flag]);
  }

  onChange(listener: (flags: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * The flag as a whole. Sources without `state()` only answer per request: asked without a context, they say
 * whether the flag is on at all, never that it is on for everyone, so contract (which needs "fully on") is
 * never confirmed through them.
 */
export function readFlagState(source: FlagSource, flag: string): FlagState | undefined {
  if (source.state) return source.state(flag);
  const enabled = source.isEnabled(flag);
  return enabled === undefined ? undefined : { enabled, fullyOn: false };
}
