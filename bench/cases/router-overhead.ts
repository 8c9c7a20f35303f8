/** Case 6: router overhead against a bare unleash-client isEnabled(), measured in a child (bench/child/router.ts). */
import { runChild } from '../lib/child.js';
import type { BenchContext } from '../lib/context.js';

export interface RouterOverhead {
  sourceKind: string;
  nsPerCall: { bare: number; source: number; router: number };
  heapCalls: number;
  /** heapUsed after a full GC, after minus before `heapCalls` calls, bytes. */
  heapGrowth: { bare: number; router: number };
}

export async function runRouterOverhead(
  ctx: BenchContext,
  options: { rounds: number; perRound: number; heapCalls: number },
): Promise<RouterOverhead> {
  ctx.log(
    `  router overhead: ${options.rounds} rounds × ${options.perRound} calls per variant, heap over ${options.heapCalls} calls`,
  );
  return runChild<RouterOverhead>('router', options, { nodeArgs: ['--expose-gc'] });
}
