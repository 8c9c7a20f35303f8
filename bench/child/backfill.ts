/**
 * Runs one phaseflag backfill (the migration is already in dual-write) in a process of its own, so the peak RSS
 * it reports is the backfill's and nothing else's. Prints one JSON line.
 */
import type { MigrationInput } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import knexFactory from 'knex';
import { childInput, memoryStatus, signalReady } from '../lib/child.js';

interface Input {
  url: string;
  stateSchema: string;
  migration: MigrationInput;
  workers: number;
  applicationName: string;
  /** Batch settings beyond the migration's defaults (the traffic case's gentle variant). */
  batch?: Record<string, number>;
  /** Throttle settings beyond the migration's (the traffic case's yielding variant). */
  throttle?: Record<string, number | boolean>;
}

const input = childInput<Input>();
const knex = knexFactory({
  client: 'pg',
  connection: { connectionString: input.url, application_name: input.applicationName },
  pool: { min: 0, max: input.workers + 4 },
});
const pf = new Phaseflag({ knex, stateSchema: input.stateSchema, pollIntervalMs: 1000 });
const m = pf.migration(input.migration);
// Loaded, compiled and connected: what the parent times from here is the backfill alone.
await m.resolve();
// Started with --expose-gc by case 1: the heap a full collection leaves, before and after the run, says what the run
// retains (the peak RSS also counts garbage not yet collected).
const gc = (globalThis as { gc?: () => void }).gc;
const heapAfterGc = () => {
  if (!gc) return null;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const heapBefore = heapAfterGc();
const before = memoryStatus();
signalReady();
const started = performance.now();
const result = await m.backfill({
  batch: { ...input.batch, workers: input.workers },
  ...(input.throttle ? { throttle: input.throttle } : {}),
});
const wallMs = performance.now() - started;
const after = memoryStatus();
const heapAfter = heapAfterGc();
await pf.close();
await knex.destroy();
process.stdout.write(
  `${JSON.stringify({ wallMs, result, rssBefore: before.rss, peakRss: after.peakRss, rssAfter: after.rss, heapBefore, heapAfter })}\n`,
);
