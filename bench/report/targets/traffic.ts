/** The targets of case 4: the application's latencies and lock waits during each backfill. */
import type { TrafficMethod } from '../../cases/traffic.js';
import { fixed, int, ms, ratioNear, rowsLabel, secs } from '../../lib/format.js';

import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

export function trafficTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const variant = (m: TrafficMethod) =>
    m === 'phaseflag-1'
      ? '1-worker (defaults)'
      : m === 'phaseflag-n'
        ? 'parallel'
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
      target: '≤ 250 ms (one batch)',
      pass: blocked <= 250,
      limit: blocked <= 250 ? '' : 'a writer that touches a row of the batch in flight waits for that batch to commit',
    });
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
