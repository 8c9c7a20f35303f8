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
      const unrelated = x.op === 'UPDATE unrelated';
      const target = unrelated ? 1.1 : 1.5;
      const floor =
        x.floorUsPerRow === undefined
          ? ''
          : ` (same run: the same triggers calling a function that only returns NEW cost ${fixed(x.floorUsPerRow, 2)} µs/row = ${ratioNear(x.floorUsPerRow / x.beforeUsPerRow, target)}${unrelated || x.unguardedUsPerRow === undefined ? '' : `; phaseflag's function without its exception blocks ${fixed(x.unguardedUsPerRow, 2)} µs/row = ${ratioNear(x.unguardedUsPerRow / x.beforeUsPerRow, target)}`})`;
      t.push({
        id: `3 ${x.change}`,
        what: unrelated
          ? `server-side cost per row of a 10k-row UPDATE of a column neither expression reads during dual-write (${x.change})`
          : `server-side cost per row of a 10k-row ${x.op === 'UPDATE' ? 'UPDATE of the old column' : x.op} during dual-write (${x.change}; pgroll's measure)`,
        figure: `${fixed(x.dualWriteUsPerRow, 2)} vs ${fixed(x.beforeUsPerRow, 2)} µs/row = ${ratioNear(x.ratio, target)}`,
        target: `≤ ${target}×`,
        pass: x.ratio <= target,
        limit:
          x.ratio <= target
            ? ''
            : unrelated
              ? `the trigger's WHEN clause keeps its function from being called, but Postgres locks every row an UPDATE touches for any BEFORE UPDATE row trigger before it evaluates WHEN (one more WAL record per row)${floor}`
              : `a BEFORE row trigger in PL/pgSQL: the call, the row taken apart and formed again to set one column, the expression, and the exception block that records a row it cannot derive${floor}`,
      });
    }
  }
  return t;
}
