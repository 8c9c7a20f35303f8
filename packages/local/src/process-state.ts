/**
 * Process-wide state shared by every copy of @phaseflag/local (and the testkit that uses it) that gets loaded.
 *
 * The package ships ESM and CJS builds, and a test run can load both (a CJS dependency plus an ESM test file).
 * Module-level `let`s would then exist twice: two embedded servers, or a second tracer provider that the
 * OpenTelemetry API refuses to register. Keeping the state on `globalThis` under a registry symbol makes
 * "once per process" true per process, not per module instance.
 */
const STATE_KEY = Symbol.for('phaseflag.local.state.v1');

export interface ProcessState {
  readonly slots: Map<string, unknown>;
  readonly exitCallbacks: Set<() => void>;
  /** Asynchronous stops run on a signal nobody else handles, last registered first (see process-exit.ts). */
  signalStops?: Set<() => Promise<unknown>>;
  exitHookInstalled: boolean;
}

export function processState(): ProcessState {
  const holder = globalThis as { [STATE_KEY]?: ProcessState };
  holder[STATE_KEY] ??= { slots: new Map(), exitCallbacks: new Set(), exitHookInstalled: false };
  return holder[STATE_KEY];
}

/** Returns the process-wide value stored under `key`, creating it on first use. */
export function processSlot<T>(key: string, create: () => T): T {
  const { slots } = processState();
  if (!slots.has(key)) slots.set(key, create());
  return slots.get(key) as T;
}
