/** The targets of case 5: the application's longest stall behind a plain ALTER and behind phaseflag's expand. */
import { fixed, ms, secs } from '../../lib/format.js';

import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

/** pgroll's default lock_timeout: the longest an application statement may stall behind expand (issue 16, target 5). */
const STALL_TARGET_MS = 500;

export function expandTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  for (const e of r.expand ?? []) {
    if (e.variant === 'plain-alter') {
      t.push({
        id: '5',
        what: `plain ALTER TABLE ADD COLUMN while a transaction holds the table ${secs(e.holdMs / 1000)}: longest application stall`,
        figure: ms(e.longestStallMs),
        target: `≥ the full ${secs(e.holdMs / 1000)} (the hazard)`,
        pass: e.longestStallMs >= e.holdMs,
        limit:
          e.longestStallMs >= e.holdMs ? '' : 'no application statement queued behind the ALTER for the whole hold',
      });
    } else {
      const ok = e.longestStallMs <= STALL_TARGET_MS;
      t.push({
        id: '5',
        what: `phaseflag expand (defaults) behind the same transaction: longest application stall`,
        figure: `${fixed(e.longestStallMs, 1)} ms (lock_timeout ${ms(e.lockTimeoutMs ?? NaN)}, ${e.attempts} attempts, expand done after ${secs(e.ddlSeconds)})`,
        target: `≤ ${ms(STALL_TARGET_MS)} and expand completes`,
        pass: ok,
        limit: ok
          ? ''
          : `${fixed(e.longestStallMs - STALL_TARGET_MS, 1)} ms over: expand holds back without queueing while the long transaction is open, so a stall this long is an attempt that queued (a holder younger than ddl.longTransactionMs at the look, bounded by lock_timeout) plus the statement's own run and the loaded machine's scheduling`,
      });
    }
  }
  return t;
}
