import type { Phase } from './phases.js';
import type { ShadowReport } from './shadow.js';

/** Seams to the outside. Each has one real implementation in its own package and a safe default. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted || ms <= 0) return resolve();
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** What a service instance knows of one migration's phase. `unknown` until the store has answered once. */
export interface PhaseSnapshot {
  readonly migrationId: string;
  readonly phase: Phase | 'unknown';
  /** Increases with every transition the store records. */
  readonly version: number;
}

/** Reads (and watches) phases. Implemented over Postgres by `@phaseflag/postgres`. */
export interface StateStore {
  readPhase(migrationId: string): Promise<PhaseSnapshot>;
  /** Calls the listener on every change the store learns of (LISTEN/NOTIFY or polling); returns unsubscribe. */
  watchPhase(migrationId: string, listener: (snapshot: PhaseSnapshot) => void): () => void;
}

/** What one service instance reports of one migration in its heartbeat: the phase it applies, what it reads and writes. */
export interface InstanceReport {
  readonly instanceId: string;
  readonly migrationId: string;
  readonly phase: Phase | 'unknown';
  readonly writesOld: boolean;
  readonly writesNew: boolean;
  readonly readsOld: boolean;
  readonly readsNew: boolean;
}

/** The state store as a service's router uses it: the phase, its changes, and the instance's own heartbeat. */
export interface RouterStore extends StateStore {
  heartbeat(report: InstanceReport): Promise<void>;
  /** Forgets the instance (it stopped): the guards no longer wait for it. */
  removeInstance(instanceId: string, migrationId: string): Promise<void>;
  /** Adds the instance's shadow comparisons to its counts (kept after it stops: the comparisons happened). */
  recordShadow?(report: ShadowReport): Promise<void>;
}
