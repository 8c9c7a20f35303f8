import type { EventEmitter } from 'node:events';
import type { RequestListener } from 'node:http';
import { LocalError, messageOf } from '../errors.js';

/** The part of unleash-server's `create()` result used here. */
export interface UnleashInstance {
  app: RequestListener;
  /** Stops its scheduler and addons, closes its database pool and unhooks its process-wide listeners. */
  stop(): Promise<void>;
}

interface UnleashServerModule {
  create(options: Record<string, unknown>): Promise<UnleashInstance>;
}

const LIB = 'unleash-server/dist/lib';

/**
 * unleash-server 6.10 is built to run once per process. Three things are process-wide:
 * - `ConfigurationRevisionService.instance` and `ClientFeatureToggleDelta.instance` cache services holding the
 *   event store, and so the database pool, of the first server built. A restart would reuse them: the revision
 *   job would poll a destroyed pool and clients would never see a change. We clear both before each build; a
 *   running server keeps the instances it was built with.
 * - Every EventStore emits on one `sharedEventEmitter`. A stopped server's services stay subscribed there, and
 *   the next server's first `feature-created` makes them query a destroyed pool: an unhandled rejection that
 *   ends the test process. We record the listeners each build adds and remove exactly those on stop.
 * - Its migrator runs db-migrate, which adds `uncaughtException` and `unhandledRejection` listeners to `process`
 *   that log "[ERROR]" and `process.exit(1)`: any stray rejection anywhere in the host (a test runner, the demo, `phaseflag dev`)
 *   would end it at once, with no cleanup, and every build adds two more. We remove the ones each build adds.
 * Builds must therefore not interleave (the caller serializes them).
 */
export async function createUnleash(options: Record<string, unknown>): Promise<UnleashInstance> {
  const unleash = await loadModule();
  for (const [path, exportName] of [
    [`${LIB}/features/feature-toggle/configuration-revision-service.js`, 'default'],
    [`${LIB}/features/client-feature-toggles/delta/client-feature-toggle-delta.js`, 'ClientFeatureToggleDelta'],
  ] as const) {
    (await exported<{ instance?: unknown }>(path, exportName)).instance = undefined;
  }
  const shared = await exported<EventEmitter>(`${LIB}/util/anyEventEmitter.js`, 'sharedEventEmitter', 'object');
  const before = listenersOf(shared);
  const processBefore = processFailureListeners();
  let instance: UnleashInstance;
  try {
    instance = await unleash.create(options);
  } finally {
    for (const [event, listener] of processFailureListeners()) {
      if (!processBefore.some(([e, l]) => e === event && l === listener)) process.removeListener(event, listener);
    }
  }
  const added = listenersOf(shared).filter(
    ([event, listener]) => !before.some(([e, l]) => e === event && l === listener),
  );
  return {
    app: instance.app,
    stop: async () => {
      for (const [event, listener] of added) shared.removeListener(event, listener);
      await instance.stop();
    },
  };
}

async function loadModule(): Promise<UnleashServerModule> {
  try {
    const imported = (await import('unleash-server')) as unknown as {
      default?: UnleashServerModule;
    } & Partial<UnleashServerModule>;
    return typeof imported.default?.create === 'function' ? imported.default : (imported as UnleashServerModule);
  } catch (error) {
    throw new LocalError(
      'PF_LOCAL_UNLEASH_MISSING',
      `unleash-server could not be loaded: ${messageOf(error)}`,
      'Reinstall @phaseflag/local (unleash-server is one of its dependencies): npm install --save-dev @phaseflag/local.',
      { cause: error },
    );
  }
}

/** One export of an unleash-server internal module, whichever way the loader wrapped its CommonJS exports. */
async function exported<T>(path: string, name: string, kind: 'function' | 'object' = 'function'): Promise<T> {
  // Node's ESM loader puts module.exports on `default`; a bundler's interop may unwrap `__esModule` modules.
  const imported = (await import(path)) as Record<string, unknown> & { default?: Record<string, unknown> };
  const value = [imported.default?.[name], imported[name]].find(
    (candidate) => candidate !== null && typeof candidate === kind,
  );
  if (value === undefined) {
    throw new LocalError(
      'PF_LOCAL_UNLEASH_LAYOUT',
      `unleash-server no longer exports ${name} from ${path}`,
      '@phaseflag/local is written for unleash-server 6.10.x (the version its package.json pins); a second copy of another version may be installed: `npm ls unleash-server`.',
    );
  }
  return value as T;
}

type Listener = (...args: unknown[]) => void;

function processFailureListeners(): Array<['uncaughtException' | 'unhandledRejection', Listener]> {
  const of = (event: 'uncaughtException' | 'unhandledRejection') =>
    (process.listeners as (e: string) => Listener[])(event).map(
      (listener) => [event, listener] as ['uncaughtException' | 'unhandledRejection', Listener],
    );
  return [...of('uncaughtException'), ...of('unhandledRejection')];
}

function listenersOf(emitter: EventEmitter): Array<[string | symbol, Listener]> {
  return emitter
    .eventNames()
    .flatMap((event) =>
      emitter.rawListeners(event).map((listener) => [event, listener as Listener] as [string | symbol, Listener]),
    );
}
