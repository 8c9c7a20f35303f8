import { spawn } from 'node:child_process';
import { processState } from './process-state.js';

/**
 * Registers a synchronous callback for the `exit` event. Only synchronous work is possible there, so callbacks
 * signal servers and hand slow cleanup to `reapAfterExit`. Returns a function that unregisters the callback.
 *
 * A SIGINT, SIGTERM or SIGHUP would kill Node without an `exit` event and orphan the servers, so while anything is
 * registered those signals are handled here (see `onSignalStop`), which ends in the callbacks.
 */
export function onProcessExit(callback: () => void): () => void {
  const state = processState();
  if (!state.exitHookInstalled) {
    state.exitHookInstalled = true;
    process.once('exit', () => {
      for (const run of state.exitCallbacks) {
        try {
          run();
        } catch {
          // Best effort: one failed cleanup must not stop the others while the process is going away.
        }
      }
      state.exitCallbacks.clear();
    });
  }
  state.exitCallbacks.add(callback);
  updateSignalListeners();
  return () => {
    if (state.exitCallbacks.delete(callback)) updateSignalListeners();
  };
}

/**
 * Registers an asynchronous stop for Ctrl-C (SIGINT), SIGTERM and SIGHUP. When such a signal arrives and the
 * process has no listener of its own for it, the stops run one after the other, the last registered first (a stack
 * stops Unleash before the Postgres it runs on), for at most `SIGNAL_STOP_MS`; then the process exits with
 * 128 + the signal number, which runs the `exit` callbacks for anything left. A second signal, a second or more
 * after the first, exits at once.
 *
 * A process that listens for the signal itself has taken it over, as Node's own default exit steps aside for a
 * listener: it decides when to stop what it started (and the `exit` callbacks still run when it exits).
 */
export function onSignalStop(stop: () => Promise<unknown>): () => void {
  const stops = signalStops();
  stops.add(stop);
  updateSignalListeners();
  return () => {
    if (stops.delete(stop)) updateSignalListeners();
  };
}

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
const SIGNAL_STOP_MS = 30_000;
const SIGNAL_LISTENERS_KEY = Symbol.for('phaseflag.local.signal-listeners.v2');

function signalStops(): Set<() => Promise<unknown>> {
  return (processState().signalStops ??= new Set());
}

interface SignalHandling {
  listeners: Map<NodeJS.Signals, () => void>;
  /** When the first signal arrived (ms since the epoch); 0 while none has. */
  stoppingSince: number;
}

/**
 * A signal this soon after the first is the same request delivered twice, not a person pressing Ctrl-C again: a
 * terminal signals the whole process group, and wrappers (npm exec, mocha's launcher) forward what they get, some
 * adding a SIGTERM of their own.
 */
const REPEAT_MS = 1_000;

/** One listener per signal per process, shared by every loaded copy of this package (see process-state.ts). */
function signalHandling(): SignalHandling {
  const holder = globalThis as { [SIGNAL_LISTENERS_KEY]?: SignalHandling };
  if (holder[SIGNAL_LISTENERS_KEY]) return holder[SIGNAL_LISTENERS_KEY];
  const handling: SignalHandling = { listeners: new Map(), stoppingSince: 0 };
  for (const [name, number] of Object.entries(SIGNALS)) {
    const signal = name as NodeJS.Signals;
    const listener = () => {
      if (process.listeners(signal).some((other) => other !== listener)) return;
      if (handling.stoppingSince > 0) {
        if (Date.now() - handling.stoppingSince >= REPEAT_MS) process.exit(128 + number);
        return;
      }
      handling.stoppingSince = Date.now();
      void runStops().finally(() => process.exit(128 + number));
    };
    handling.listeners.set(signal, listener);
  }
  holder[SIGNAL_LISTENERS_KEY] = handling;
  return handling;
}

async function runStops(): Promise<void> {
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, SIGNAL_STOP_MS).unref());
  const all = (async () => {
    for (const stop of [...signalStops()].reverse()) {
      try {
        await stop();
      } catch {
        // Best effort: the exit callbacks still stop what this one could not.
      }
    }
  })();
  await Promise.race([all, deadline]);
}

/**
 * Listening while anything is registered; the listeners go away with the last registration, unless a signal stop
 * is under way: the stops unregister themselves as they finish, and a repeated signal then must still be absorbed
 * (or end the process with the right code), not kill it by Node's default before the stops are done.
 */
function updateSignalListeners(): void {
  const handling = signalHandling();
  const on = processState().exitCallbacks.size + signalStops().size > 0 || handling.stoppingSince > 0;
  for (const [signal, listener] of handling.listeners) {
    process.removeListener(signal, listener);
    if (on) process.on(signal, listener);
  }
}

/**
 * Removes `dir` once every process in `pids` has exited, from a detached shell that outlives this process.
 * A server signalled from an `exit` handler is still writing its data directory when Node stops, so deleting
 * it synchronously would race the shutdown; the reaper waits (at most ~60s) and then deletes.
 * An orphaned postmaster is re-parented to pid 1, which in some containers never reaps it: `kill -0` still
 * succeeds on the zombie, so where /proc exists the reaper treats state `Z` as gone.
 * Paths and pids travel as positional arguments, never pasted into the script text.
 */
export function reapAfterExit(dir: string, pids: number[]): void {
  const script = [
    'alive() {',
    '  if [ -d /proc/self ]; then',
    '    state=$(sed "s/.*) //" "/proc/$1/stat" 2>/dev/null) || return 1',
    '    [ -n "$state" ] && [ "${state%% *}" != Z ]',
    '  else kill -0 "$1" 2>/dev/null; fi',
    '}',
    'dir="$1"; shift',
    'for pid in "$@"; do',
    '  i=0',
    '  while alive "$pid" && [ "$i" -lt 300 ]; do sleep 0.2; i=$((i+1)); done',
    'done',
    'rm -rf -- "$dir"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'phaseflag-reaper', dir, ...pids.map(String)], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}
