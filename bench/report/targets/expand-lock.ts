/** The targets of case 5: the application's longest stall behind a plain ALTER and behind phaseflag's expand. */
import { fixed, ms, secs } from '../../lib/format.js';

import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

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
      const ok = e.lockTimeoutMs !== null && e.longestStallMs <= e.lockTimeoutMs;
      t.push({
        id: '5',
        what: `phaseflag expand behind the same transaction: longest application stall`,
        figure: `${fixed(e.longestStallMs, 1)} ms (${e.attempts} attempts, expand done after ${secs(e.ddlSeconds)})`,
        target: `≤ lock_timeout (${ms(e.lockTimeoutMs ?? NaN)})`,
        pass: ok,
        limit: ok
          ? ''
          : `${fixed(e.longestStallMs - (e.lockTimeoutMs ?? 0), 1)} ms over: the statement that queued right behind an attempt's LOCK TABLE waits out that attempt's whole lock_timeout and then still has to run and answer, plus the server's timer and scheduling on a loaded machine; the queue itself never outlives lock_timeout`,
      });
    }
  }
  return t;
}
