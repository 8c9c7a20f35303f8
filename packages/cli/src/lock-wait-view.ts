import type { LockWait } from '@phaseflag/postgres';
import { formatDuration, type Output } from './output.js';

const QUERY_SHOWN = 120;

/**
 * A DDL statement waiting for its lock, as one line on stderr: which statement, which attempt, how long so far
 * and at most, and who blocks it (pid, application, state and since when, statement) so the operator knows which
 * session to finish or cancel.
 */
export function printLockWait(out: Output, w: LockWait): void {
  const c = out.err;
  const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : formatDuration(ms / 1000));
  const blockers = w.blockers.map((b) => {
    const since = b.xactStart ?? b.queryStart;
    const age = since
      ? `, since ${since.toISOString()} (${formatDuration((Date.now() - since.getTime()) / 1000)})`
      : '';
    const query = (b.query ?? '').replace(/\s+/g, ' ').trim();
    const shown = query.length > QUERY_SHOWN ? `${query.slice(0, QUERY_SHOWN)}…` : query;
    return `pid ${c.bold(String(b.pid))} (${b.applicationName ?? 'no application_name'}, ${b.state ?? '?'}${age})${shown ? `: ${c.dim(shown)}` : ''}`;
  });
  // Held back (not queued): the wait stalls no one and is bounded by the statement's budget, not lock_timeout.
  const waiting = w.queued ? `waits for ${w.lockMode}` : `holds back, without queueing, from ${w.lockMode}`;
  out.note(
    `${c.bold(w.migrationId)}: ${w.step} ${c.yellow(waiting)}${w.table ? ` on ${w.table}` : ''} ` +
      `(attempt ${w.attempt}/${w.maxAttempts}, ${seconds(w.waitedMs)}${w.queued ? ` of ${seconds(w.lockTimeoutMs)}` : ''}; ` +
      `${seconds(w.elapsedMs)} in all, gives up by ${seconds(w.maxDurationMs)}) blocked by ${blockers.join('; ')}`,
  );
}
