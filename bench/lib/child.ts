import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Runs a bench child (a TypeScript file under bench/child) in its own Node process through tsx, hands it its
 * input as JSON in an environment variable and resolves with the JSON object it prints last. Children exist for
 * what one process cannot measure about itself fairly: peak RSS of a backfill alone, and a micro-benchmark
 * with --expose-gc undisturbed by the orchestrator's timers.
 */
export function runChild<T>(
  name: string,
  input: unknown,
  options: { nodeArgs?: string[]; timeoutMs?: number; onReady?: () => void } = {},
): Promise<T> {
  const file = fileURLToPath(new URL(`../child/${name}.ts`, import.meta.url));
  return new Promise<T>((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', file], {
      env: { ...process.env, PF_BENCH_INPUT: JSON.stringify(input) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let ready = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!ready && out.includes(`${READY}\n`)) {
        ready = true;
        options.onReady?.();
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const last = out
        .trim()
        .split('\n')
        .filter((l) => l && l !== READY)
        .pop();
      if (code !== 0 || !last) {
        reject(
          new Error(
            `bench child ${name} failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').slice(-15).join('\n')}`,
          ),
        );
        return;
      }
      try {
        resolve(JSON.parse(last) as T);
      } catch (error) {
        reject(
          new Error(`bench child ${name} printed no JSON result: ${last.slice(0, 200)} (${(error as Error).message})`),
        );
      }
    });
  });
}

/** A line a child prints once it has loaded and connected, right before the work the parent measures. */
export const READY = 'PF_BENCH_READY';

export function signalReady(): void {
  process.stdout.write(`${READY}\n`);
}

/** The child's side: its input. */
export function childInput<T>(): T {
  const raw = process.env.PF_BENCH_INPUT;
  if (!raw) throw new Error('bench children are started by bench/run.ts (PF_BENCH_INPUT is not set)');
  return JSON.parse(raw) as T;
}

/** VmHWM (peak resident set) and VmRSS of this process, in bytes, from /proc (Linux); null elsewhere. */
export function memoryStatus(): { peakRss: number | null; rss: number | null } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (field: string) => {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : null;
    };
    return { peakRss: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return { peakRss: null, rss: null };
  }
}
