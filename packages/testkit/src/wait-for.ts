import { TestkitError, messageOf } from './errors.js';

export interface WaitForOptions {
  /** Give up after this long. Default 10 000 ms. */
  timeoutMs?: number;
  /** Pause between attempts. Default 50 ms. */
  intervalMs?: number;
  /** Names the condition in the timeout error, e.g. "replica caught up". */
  description?: string;
}

/**
 * Polls `predicate` until it returns a truthy value and resolves with that value. A predicate that throws counts
 * as "not yet" (a replica still starting refuses connections); the last error is kept as the timeout's cause
 * so it is not lost.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const what = options.description ?? 'condition';
      const detail = lastError === undefined ? '' : ` (last error: ${messageOf(lastError)})`;
      throw new TestkitError(
        'PF_TESTKIT_WAIT_TIMEOUT',
        `Timed out after ${timeoutMs} ms waiting for ${what}${detail}.`,
        'Raise timeoutMs if the machine is slow, or check that the condition can become true at all.',
        { cause: lastError },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
