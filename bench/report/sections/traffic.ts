/** The section of RESULTS.md for case 4: live traffic during each backfill. */
import type { TrafficRun } from '../../cases/traffic.js';
import { int, ms, rowsLabel, secs, table } from '../../lib/format.js';

import { METHOD_LABEL } from './method-label.js';

export function trafficSection(runs: TrafficRun[]): string {
  const out = ['## 4. Live traffic during each backfill', ''];
  out.push(
    "One writer (`UPDATE … WHERE id = random`, plain SQL) and one reader (`SELECT * … WHERE id = random`), each pausing 2 ms between statements, first for a baseline window with no backfill on the same table in the same state, then while the backfill runs. Lock waits: application backends seen in `pg_stat_activity` with `wait_event_type = 'Lock'`, sampled every 10 ms; each wait is bounded from above (it errs long by at most one sampling interval).",
  );
  out.push('');
  const rows = runs.map((x) => [
    `${x.change}, ${rowsLabel(x.rows)}`,
    METHOD_LABEL[x.method],
    secs(x.backfillSeconds),
    `${ms(x.baseline.read.p50Ms)} / ${ms(x.baseline.read.p99Ms)} / ${ms(x.baseline.read.maxMs)}`,
    `${ms(x.during.read.p50Ms)} / ${ms(x.during.read.p99Ms)} / ${ms(x.during.read.maxMs)}`,
    `${ms(x.baseline.write.p50Ms)} / ${ms(x.baseline.write.p99Ms)} / ${ms(x.baseline.write.maxMs)}`,
    `${ms(x.during.write.p50Ms)} / ${ms(x.during.write.p99Ms)} / ${ms(x.during.write.maxMs)}`,
    `${ms(x.during.lockWait.longestMs)} (${x.during.lockWait.statementsWaiting} of ${int(x.during.write.ops)} writes)`,
    String(x.during.read.errors + x.during.write.errors),
  ]);
  out.push(
    table(
      [
        'table',
        'backfill',
        'backfill time',
        'read p50/p99/max, no backfill',
        'read, during',
        'write p50/p99/max, no backfill',
        'write, during',
        'longest lock wait (statements that waited)',
        'errors',
      ],
      rows,
    ),
  );
  return out.join('\n');
}
