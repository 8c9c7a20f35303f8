/** The figures of case 8: flag propagation (issue 6 sets no target for it). */
import { ms, secs } from '../../lib/format.js';

import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

export function propagationTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const p = r.propagation;
  if (!p || !p.measured) {
    t.push({
      id: '8',
      what: 'flag propagation: Admin API toggle → every instance applies it',
      figure: `not measured yet: ${p?.reason ?? 'case skipped'}`,
      target: 'none in issue 6',
      pass: null,
      limit: '',
    });
  } else {
    for (const s of p.series) {
      t.push({
        id: '8',
        what: `flag propagation to ${s.instances} instances, refresh every ${secs(s.refreshIntervalMs / 1000)}`,
        figure: `median ${ms(s.medianAllMs)}, worst ${ms(s.maxAllMs)} over ${s.toggles.length} toggles`,
        target: "none in issue 6; expected ≤ refresh interval + ~1 s (the server's revision job)",
        pass: null,
        limit: '',
        info: true,
      });
    }
  }
  return t;
}
