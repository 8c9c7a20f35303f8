import type { Knex } from 'knex';
import { messageOf } from '../errors.js';
import { LatencyHistogram } from './latency-histogram.js';
import { validateLoadOptions, type LoadOp, type LoadOptions } from './load-options.js';

export type { LoadOp, LoadOptions };

export interface OpStats {
  ops: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ErrorSample {
  op: string;
  message: string;
  /** SQLSTATE when the error came from Postgres (e.g. `42703` undefined column). */
  code?: string;
}

export interface LoadReport {
  /** Completed operations, failed ones included. */
  ops: number;
  errors: number;
  /** The first errors seen (at most 20): the earliest failure is usually the cause, later ones its echo. */
  errorSamples: ErrorSample[];
  byOp: Record<string, OpStats>;
  durationMs: number;
}

export interface LoadHandle {
  /** Counts so far, while the load keeps running. */
  snapshot(): LoadReport;
  /** Stops picking new operations and resolves once in-flight ones have settled. Idempotent. */
  stop(): Promise<LoadReport>;
}

const MAX_ERROR_SAMPLES = 20;

interface OpCounters {
  ops: number;
  errors: number;
  latency: LatencyHistogram;
}

/**
 * Runs application-like statements continuously while a migration step runs, to prove "zero failed application
 * statements". Each of `concurrency` workers loops: pick an op by weight, run it, record latency and outcome.
 */
export function startLoad(options: LoadOptions): LoadHandle {
  const { knex, ops, concurrency, pauseMs } = validateLoadOptions(options);
  const counters = new Map<string, OpCounters>(
    ops.map((op) => [op.name, { ops: 0, errors: 0, latency: new LatencyHistogram() }]),
  );
  const errorSamples: ErrorSample[] = [];
  const pauses = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  const pick = weightedPicker(ops);
  const startedAt = performance.now();
  let nextIndex = 0;
  let stopping = false;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          pauses.delete(entry);
          resolve();
        }, ms),
        wake: resolve,
      };
      pauses.add(entry);
    });

  const runOne = async (op: LoadOp, index: number, db: Knex) => {
    const counter = counters.get(op.name)!;
    const begin = performance.now();
    try {
      await op.run(index, db);
    } catch (error) {
      counter.errors++;
      if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(sampleOf(op.name, error));
    } finally {
      counter.ops++;
      counter.latency.record(performance.now() - begin);
    }
  };

  const worker = async () => {
    while (!stopping) {
      await runOne(pick(), nextIndex++, knex);
      // An op that settles without I/O would otherwise spin on microtasks and starve the timers that stop us.
      if (pauseMs > 0) await pause(pauseMs);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };

  const report = (): LoadReport => {
    const byOp: Record<string, OpStats> = {};
    let total = 0;
    let errors = 0;
    for (const [name, counter] of counters) {
      total += counter.ops;
      errors += counter.errors;
      byOp[name] = {
        ops: counter.ops,
        errors: counter.errors,
        p50Ms: counter.latency.percentile(0.5),
        p99Ms: counter.latency.percentile(0.99),
        maxMs: counter.latency.maxMs,
      };
    }
    return { ops: total, errors, errorSamples: [...errorSamples], byOp, durationMs: performance.now() - startedAt };
  };

  const workers = Array.from({ length: concurrency }, worker);
  let stopped: Promise<LoadReport> | undefined;
  return {
    snapshot: report,
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        for (const entry of pauses) {
          clearTimeout(entry.timer);
          entry.wake();
        }
        pauses.clear();
        await Promise.all(workers);
        return report();
      })()),
  };
}

function weightedPicker(ops: LoadOp[]): () => LoadOp {
  const cumulative: number[] = [];
  let total = 0;
  for (const op of ops) {
    total += op.weight ?? 1;
    cumulative.push(total);
  }
  return () => {
    const target = Math.random() * total;
    const index = cumulative.findIndex((upTo) => target < upTo);
    return ops[index === -1 ? ops.length - 1 : index]!;
  };
}

function sampleOf(op: string, error: unknown): ErrorSample {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? { op, message: messageOf(error), code } : { op, message: messageOf(error) };
}
