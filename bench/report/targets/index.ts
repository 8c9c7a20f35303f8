/** The targets of issue 6, in the order of its cases, each with its figure, its baseline from the same run, a verdict and what limits it. */
import type { BenchResults } from '../results.js';
import { memoryTargets, sizeTargets, throughputTargets } from './backfill.js';
import { expandTargets } from './expand-lock.js';
import { fleetTargets } from './fleet.js';
import { peersTargets } from './peers.js';
import { propagationTargets } from './propagation.js';
import { routerTargets } from './router-overhead.js';
import type { Target } from './target.js';
import { trafficTargets } from './traffic.js';
import { writeAmplificationTargets } from './write-amplification.js';

export type { Target } from './target.js';

export function collectTargets(r: BenchResults): Target[] {
  const b = r.backfill;
  return [
    ...(b ? throughputTargets(r, b) : []),
    ...(b ? sizeTargets(r, b) : []),
    ...writeAmplificationTargets(r),
    ...trafficTargets(r),
    ...expandTargets(r),
    ...routerTargets(r),
    ...(b ? memoryTargets(r, b) : []),
    ...propagationTargets(r),
    ...fleetTargets(r),
    ...peersTargets(r),
  ];
}
