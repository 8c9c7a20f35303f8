/** The section of RESULTS.md for case 5: expand behind a long transaction. */
import type { ExpandRun } from '../../cases/expand-lock.js';
import { int, ms, secs, table } from '../../lib/format.js';

export function expandSection(runs: ExpandRun[]): string {
  const out = ['## 5. Expand behind a long transaction', ''];
  out.push(
    "A session opens a transaction and reads the table (ACCESS SHARE, held until it commits); two application loops keep reading and writing random rows (5 ms pause); then the DDL starts, and the long transaction commits a fixed time after the first application statement is seen queued behind the DDL. A plain ALTER queues for ACCESS EXCLUSIVE and every application statement queues behind it. phaseflag's expand (default settings) first looks at pg_locks from a connection of its own: while a transaction older than `ddl.longTransactionMs` (200 ms) holds a conflicting lock it holds back without queueing, so no application statement queues behind it and the hold starts 1 s after the DDL (no statement seen queued); once the transaction ends it takes its lock under lock_timeout (400 ms), which bounds the stall of a transaction the look could not see, and retries with back-off after one.",
  );
  out.push('');
  out.push(
    table(
      [
        'DDL',
        'lock held after the first statement queued',
        'lock_timeout',
        'longest application stall',
        'longest lock wait',
        'DDL done after',
        'attempts',
        'application statements (errors)',
      ],
      runs.map((e) => [
        e.variant === 'plain-alter' ? '`ALTER TABLE … ADD COLUMN`' : 'phaseflag expand()',
        secs(e.holdMs / 1000),
        e.lockTimeoutMs === null ? 'none' : ms(e.lockTimeoutMs),
        ms(e.longestStallMs),
        ms(e.lockWait.longestMs),
        secs(e.ddlSeconds),
        e.attempts === null ? '1' : String(e.attempts),
        `${int(e.appOps)} (${e.appErrors})`,
      ]),
    ),
  );
  return out.join('\n');
}
