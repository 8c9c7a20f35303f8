/** The targets of case 6: the router's cost per decision, and its heap growth. */
import { fixed, int, ratioNear } from '../../lib/format.js';

import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

const MiB = 1024 * 1024;
const HEAP_GROWTH_LIMIT = MiB;

export function routerTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  if (r.router) {
    const x = r.router.nsPerCall.router / r.router.nsPerCall.bare;
    t.push({
      id: '6',
      what: `router decision (decide + readColumn, flags in memory, ${r.router.sourceKind}) vs bare unleash-client isEnabled()`,
      figure: `${fixed(r.router.nsPerCall.router, 0)} ns vs ${fixed(r.router.nsPerCall.bare, 0)} ns = ${ratioNear(x, 1.2)}`,
      target: '≤ 1.2×',
      pass: x <= 1.2,
      limit:
        x <= 1.2
          ? ''
          : `the flag source alone costs ${fixed(r.router.nsPerCall.source, 0)} ns (freshness check and definition lookup before the client's isEnabled)`,
    });
    const g = r.router.heapGrowth.router;
    t.push({
      id: '6',
      what: `heap growth over ${int(r.router.heapCalls)} router decisions (heapUsed after full GC)`,
      figure: `${g >= 0 ? '+' : ''}${int(g)} bytes (bare client: ${int(r.router.heapGrowth.bare)})`,
      target: 'none (we count < 1 MiB as none)',
      pass: g < HEAP_GROWTH_LIMIT,
      limit: g < HEAP_GROWTH_LIMIT ? '' : 'something retains memory per call',
    });
  }
  return t;
}
