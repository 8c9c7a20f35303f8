import type { Knex } from 'knex';
import { TestkitError } from '../errors.js';

export interface LoadOp {
  name: string;
  /** Relative frequency; default 1. Zero disables the op. */
  weight?: number;
  /** `index` is unique across all workers, handy for distinct keys; `knex` is the load's pool. */
  run: (index: number, knex: Knex) => Promise<void>;
}

export interface LoadOptions {
  knex: Knex;
  /** Workers running ops in parallel; default 4. Keep it at or below the pool size, or latency includes queueing. */
  concurrency?: number;
  ops: LoadOp[];
  /** Pause after each op, per worker; default 0. */
  pauseMs?: number;
}

export interface ValidLoadOptions {
  knex: Knex;
  concurrency: number;
  ops: LoadOp[];
  pauseMs: number;
}

/** Checks the options once, at the boundary, so a mistake fails the test setup instead of skewing its numbers. */
export function validateLoadOptions(options: LoadOptions): ValidLoadOptions {
  const concurrency = options.concurrency ?? 4;
  const pauseMs = options.pauseMs ?? 0;
  const fail = (what: string, value: unknown) => {
    throw new TestkitError(
      'PF_TESTKIT_INVALID_LOAD_OPTIONS',
      `startLoad: ${what} (got ${JSON.stringify(value)}).`,
      'Pass { knex, ops: [{ name, run, weight? }], concurrency?: positive integer, pauseMs?: >= 0 }.',
    );
  };
  if (!options.knex) fail('knex is required', options.knex);
  if (!Number.isInteger(concurrency) || concurrency < 1) fail('concurrency must be a positive integer', concurrency);
  if (!Number.isFinite(pauseMs) || pauseMs < 0) fail('pauseMs must be a finite number >= 0', pauseMs);
  if (!Array.isArray(options.ops) || options.ops.length === 0) fail('ops must be a non-empty array', options.ops);
  const names = new Set<string>();
  let totalWeight = 0;
  for (const op of options.ops) {
    if (!op.name || names.has(op.name)) fail('each op needs a unique name', op.name);
    if (typeof op.run !== 'function') fail(`op "${op.name}" needs a run function`, typeof op.run);
    const weight = op.weight ?? 1;
    if (!Number.isFinite(weight) || weight < 0) fail(`op "${op.name}" weight must be >= 0`, weight);
    names.add(op.name);
    totalWeight += weight;
  }
  if (totalWeight <= 0) fail('at least one op needs a positive weight', totalWeight);
  return { knex: options.knex, concurrency, ops: options.ops, pauseMs };
}
