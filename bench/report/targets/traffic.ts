/** The targets of case 4: the application's latencies and lock waits during each backfill. */
import { YIELD_SETTING, type TrafficMethod } from '../../cases/traffic.js';
import { fixed, int, ms, ratio, ratioNear, rowsLabel, secs } from '../../lib/format.js';

import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

export function trafficTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const variant = (m: TrafficMethod) =>
    m === 'phaseflag-1'
      ? '1-worker (defaults)'
      : m === 'phaseflag-n'
        ? 'parallel'
        : m === 'phaseflag-yield'
          ? `yielding (${YIELD_SETTING.batch.targetBatchMs} ms batches, ${YIELD_SETTING.batch.pauseMs} ms pauses, throttle.yieldToApplication)`
          : 'gentle (20 ms batches, 20 ms pauses)';
  for (const run of (r.traffic ?? []).filter((x) => x.method !== 'single-update')) {
    for (const op of ['read', 'write'] as const) {
      const x = run.during[op].p99Ms / run.baseline[op].p99Ms;
      const waited = run.during.lockWait.statementsWaiting;
      const writes = run.during.write.ops;
      t.push({
        id: `4 ${run.change}`,
        what: `application ${op} p99 during the ${variant(run.method)} backfill (${run.change}, ${rowsLabel(run.rows)} rows)`,
        figure: `${ms(run.during[op].p99Ms)} vs ${ms(run.baseline[op].p99Ms)} without backfill = ${ratioNear(x, 2)}`,
        target: '≤ 2× baseline',
        pass: x <= 2,
        limit:
          x <= 2
            ? ''
            : op === 'write' && writes > 0 && waited / writes >= 0.005
              ? `row locks: a batch holds its rows until it commits, and ${int(waited)} of ${int(writes)} writes (${fixed((100 * waited) / writes, 1)}%) touched a row of the batch in flight and waited for it (longest ${ms(run.during.lockWait.longestMs)}), which puts the 99th percentile inside those waits; the share is about batch rows ÷ table rows, so it falls as the table grows or the batches shrink; plus CPU (p50 ${ms(run.baseline[op].p50Ms)} → ${ms(run.during[op].p50Ms)})`
              : `CPU: the backfill's backend, its VACUUMs and its Node process share the machine's ${r.machine.cores} cores with the application, so its statements wait to be scheduled (p50 ${ms(run.baseline[op].p50Ms)} → ${ms(run.during[op].p50Ms)}); batch.pauseMs leaves the application room`,
      });
    }
    const blocked = run.during.lockWait.longestMs;
    t.push({
      id: `4 ${run.change}`,
      what: `longest time an application statement waited on a lock, ${variant(run.method)} backfill (${run.change})`,
      figure: `${ms(blocked)} (${run.during.lockWait.statementsWaiting} statements waited; slowest write ${ms(run.during.write.maxMs)})`,
      target: '≤ 50 ms',
      pass: blocked <= 50,
      limit:
        blocked <= 50
          ? ''
          : `a writer that touches a row of the batch in flight waits for that batch to commit: batches aim at batch.targetBatchMs and a batch that runs long (a busy CPU, a checkpoint) holds its rows as long; the next one is sized for it, this one is not (slowest write ${ms(run.during.write.maxMs)})`,
    });
    const single = (r.traffic ?? []).find((x) => x.method === 'single-update' && x.change === run.change);
    if (run.method === 'phaseflag-yield' && single) {
      const rate = run.rows / run.backfillSeconds;
      const singleRate = single.rows / single.backfillSeconds;
      const x = rate / singleRate;
      const defaults = (r.traffic ?? []).find((y) => y.method === 'phaseflag-1' && y.change === run.change);
      const busy =
        YIELD_SETTING.batch.targetBatchMs / (YIELD_SETTING.batch.targetBatchMs + YIELD_SETTING.batch.pauseMs);
      const full = defaults ? defaults.rows / defaults.backfillSeconds / singleRate : null;
      const held = run.backfill
        ? ` (${int(run.backfill.batches)} batches; held back ${secs(run.backfill.throttledMs / 1000)} by the application watch)`
        : '';
      t.push({
        id: `4 ${run.change}`,
        what: `rows/s the ${variant(run.method)} backfill keeps (${run.change}, ${rowsLabel(run.rows)} rows, under the same traffic)`,
        figure: `${int(rate)} vs single UPDATE ${int(singleRate)} rows/s = ${ratioNear(x, 0.5)}${held}`,
        target: '≥ 0.5× single UPDATE (aim)',
        pass: x >= 0.5,
        limit:
          x >= 0.5
            ? ''
            : `the pauses: the worker runs ${YIELD_SETTING.batch.targetBatchMs} ms batches then sleeps ${YIELD_SETTING.batch.pauseMs} ms, busy at most ${Math.round(100 * busy)}% of the time${full === null ? '' : `; the default backfill, busy all the time, ran at ${ratio(full)} the single UPDATE in this run, so this setting's ceiling is about ${ratio(busy * full)}`}; a busier duty cycle leaves the application less CPU (its read p99 is CPU-bound on ${r.machine.cores} cores)`,
      });
    }
  }
  for (const run of (r.traffic ?? []).filter((x) => x.method === 'single-update')) {
    t.push({
      id: `4 ${run.change}`,
      what: `contrast: the single UPDATE blocks writers for its whole duration (${run.change})`,
      figure: `longest lock wait ${ms(run.during.lockWait.longestMs)} of a ${secs(run.backfillSeconds)} UPDATE; slowest write ${ms(run.during.write.maxMs)}`,
      target: 'baseline behaviour, not a phaseflag target',
      pass: null,
      limit: '',
      info: true,
    });
  }
  return t;
}
