/** The targets of case 3: an application write during dual-write, one row at a time and in bulk. */
import { fixed, ratioNear } from '../../lib/format.js';

import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

export function writeAmplificationTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const wa = r.writeAmplification;
  if (wa) {
    for (const s of wa.statements) {
      const bulk = wa.bulk.find((x) => x.change === s.change && x.op === s.op);
      t.push({
        id: `3 ${s.change}`,
        what: `application ${s.op} of one row during dual-write, ${s.path === 'router' ? 'through router.row()' : 'plain SQL, sync trigger'} (${s.change})`,
        figure: `${fixed(s.dualWriteUs, 0)} µs vs ${fixed(s.beforeUs, 0)} µs before expand = ${ratioNear(s.ratio, 1.5)}`,
        target: '≤ 1.5×',
        pass: s.ratio <= 1.5,
        limit:
          s.ratio <= 1.5
            ? ''
            : `the sync trigger's PL/pgSQL call on every row written: server-side ${bulk ? `${fixed(bulk.beforeUsPerRow, 2)} → ${fixed(bulk.dualWriteUsPerRow, 2)} µs/row` : 'n/a'}${s.path === 'router' ? ' (router.row() leaves the derived column to the trigger while it is live)' : ''}`,
      });
    }
    for (const x of wa.bulk) {
      t.push({
        id: `3 ${x.change}`,
        what: `server-side cost per row of a 10k-row ${x.op} during dual-write (${x.change}; pgroll's measure)`,
        figure: `${fixed(x.dualWriteUsPerRow, 2)} vs ${fixed(x.beforeUsPerRow, 2)} µs/row = ${ratioNear(x.ratio, 1.5)}`,
        target: '≤ 1.5×',
        pass: x.ratio <= 1.5,
        limit:
          x.ratio <= 1.5
            ? ''
            : "without the round trip that dilutes it in an application's single-row statements, the BEFORE row trigger's cost shows whole: a PL/pgSQL call, the expression evaluated again, and a copy of the new row, for every row",
      });
    }
  }
  return t;
}
