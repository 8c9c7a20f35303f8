/** The targets of case 11: phaseflag's rows/s against pgroll's and reshape's (reproduced) in the same run. */
import type { PeerMethod, PeerRun } from '../../cases/peers.js';
import { int, mb, ms, ratio, ratioNear, rowsLabel } from '../../lib/format.js';
import { CHANGES } from '../../lib/orders.js';

import type { BenchResults } from '../results.js';
import { p99Of } from '../sections/peers.js';
import type { Target } from './target.js';

const SHORT: Record<PeerMethod, string> = {
  'single-update': 'single UPDATE',
  'phaseflag-1': 'phaseflag',
  pgroll: 'pgroll',
  reshape: 'reshape',
  'offset-loop': 'OFFSET loop',
};

export function peersTargets(r: BenchResults): Target[] {
  const p = r.peers;
  if (!p) return [];
  const t: Target[] = [];
  for (const size of [...new Set(p.runs.map((x) => x.rows))]) {
    for (const change of [...new Set(p.runs.map((x) => x.change))]) {
      const of = (m: PeerMethod) => p.runs.find((x) => x.method === m && x.change === change && x.rows === size);
      const pf = of('phaseflag-1');
      const single = of('single-update');
      const present = (['single-update', 'phaseflag-1', 'pgroll', 'reshape', 'offset-loop'] as const)
        .map(of)
        .filter((x): x is PeerRun => x !== undefined);
      for (const peer of ['pgroll', 'reshape'] as const) {
        const other = of(peer);
        if (!pf || !other) continue;
        const x = pf.rowsPerSecond / other.rowsPerSecond;
        t.push({
          id: `11 ${change}`,
          what: `backfill rows/s against ${peer}'s backfill (reproduced), ${CHANGES[change].label}, ${rowsLabel(size)} rows, phaseflag 1 worker, defaults`,
          figure: `${int(pf.rowsPerSecond)} vs ${int(other.rowsPerSecond)} rows/s = ${ratioNear(x, 1)}`,
          target: `≥ 1.0× ${peer}`,
          pass: x >= 1,
          limit:
            x >= 1
              ? ''
              : `phaseflag ${int(pf.batches ?? NaN)} batches against ${peer}'s ${int(other.batches ?? NaN)}; both under the same application load; the machine's ${r.machine.cores} cores are shared with the other helpers' work (load ${r.machine.loadAtStart.map((l) => l.toFixed(1)).join(', ')} at the start)`,
        });
      }
      if (single && present.length > 1) {
        t.push({
          id: `11 ${change}`,
          what: `rows/s of each method against one UPDATE, ${change}, ${rowsLabel(size)} rows`,
          figure: present
            .filter((x) => x !== single)
            .map(
              (x) =>
                `${SHORT[x.method]} ${ratio(x.rowsPerSecond / single.rowsPerSecond)}${x.offset && !x.offset.completed ? ' (extrapolated)' : ''}`,
            )
            .join('; ')
            .concat(` (single UPDATE ${int(single.rowsPerSecond)} rows/s)`),
          target: 'figure only',
          pass: null,
          limit: '',
          info: true,
        });
      }
      if (present.length) {
        t.push({
          id: `11 ${change}`,
          what: `application read / write p99 during each backfill (vs no backfill on the same table); longest lock wait, slowest write; ${change}, ${rowsLabel(size)} rows`,
          figure: present
            .map(
              (x) =>
                `${SHORT[x.method]} ${p99Of(x, 'read')} / ${p99Of(x, 'write')}; ${ms(x.traffic.during.lockWait.longestMs)}, ${ms(x.traffic.during.write.maxMs)}`,
            )
            .join('; '),
          target: 'figure only',
          pass: null,
          limit: '',
          info: true,
        });
      }
      const sized = present.filter((x) => !x.offset || x.offset.completed);
      if (sized.length) {
        t.push({
          id: `11 ${change}`,
          what: `table size after each backfill, total / heap (vs before), ${change}, ${rowsLabel(size)} rows`,
          figure: sized
            .map(
              (x) =>
                `${SHORT[x.method]} ${mb(x.after.total)} (${ratio(x.after.total / x.before.total)}) / ${ratio(x.after.heap / x.before.heap)}`,
            )
            .join('; '),
          target: 'figure only',
          pass: null,
          limit: '',
          info: true,
        });
      }
    }
  }
  return t;
}
