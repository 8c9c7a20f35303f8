import { EXIT } from './exit-codes.js';

/**
 * Ctrl-C as an AbortSignal: the first one asks whatever runs to stop at a safe point (a backfill after its batch,
 * DDL between retries); a second one exits at once with 130 (still safe: every batch commits with its
 * checkpoint, and Postgres rolls back whatever was in flight).
 */
export function interruptSignal(onFirst?: () => void): {
  signal: AbortSignal;
  trigger: () => void;
  dispose: () => void;
} {
  const controller = new AbortController();
  const trigger = () => {
    if (controller.signal.aborted) {
      process.stderr.write('\ninterrupted again: exiting now\n');
      process.exit(EXIT.interrupted);
    }
    controller.abort(new Error('interrupted'));
    onFirst?.();
  };
  process.on('SIGINT', trigger);
  process.on('SIGTERM', trigger);
  return {
    signal: controller.signal,
    trigger,
    dispose: () => {
      process.off('SIGINT', trigger);
      process.off('SIGTERM', trigger);
    },
  };
}

/** Sleeps, or less when the signal aborts (Ctrl-C should not wait out a poll interval). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
