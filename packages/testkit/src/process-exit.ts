import { spawn } from 'node:child_process';
import { processState } from './process-state.js';

/**
 * Registers a synchronous callback for the `exit` event. Only synchronous work is possible there, so callbacks
 * signal servers and hand slow cleanup to `reapAfterExit`. Returns a function that unregisters the callback.
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
    });
  }
  state.exitCallbacks.add(callback);
  return () => state.exitCallbacks.delete(callback);
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
