/** The section of RESULTS.md for case 11: phaseflag beside pgroll, reshape and the OFFSET loop in the same run. */
import type { PeerMethod, PeerRun, PeersCase } from '../../cases/peers.js';
import { PEER_BATCH } from '../../cases/peers-tools.js';
import { int, mb, ms, ratio, rowsLabel, secs, table } from '../../lib/format.js';

export const PEER_LABEL: Record<PeerMethod, string> = {
  'single-update': 'one `UPDATE t SET new = expr`',
  'phaseflag-1': 'phaseflag, 1 worker (defaults)',
  pgroll: `pgroll's backfill (reproduced: ${PEER_BATCH}-row keyset batches, its PL/pgSQL trigger)`,
  reshape: `reshape's backfill (reproduced: ${PEER_BATCH}-row keyset batches, its PL/pgSQL trigger)`,
  'offset-loop': 'LIMIT/OFFSET loop (knex, 1000 rows)',
};

/** Read or write p99 during the run against the baseline window on the same table, as "x ms (r×)". */
export function p99Of(run: PeerRun, op: 'read' | 'write'): string {
  const d = run.traffic.during[op].p99Ms;
  return `${ms(d)} (${ratio(d / run.traffic.baseline[op].p99Ms)})`;
}

export function peersSection(p: PeersCase): string {
  const out = ['## 11. Peers in the same run', ''];
  const sizes = [...new Set(p.runs.map((x) => rowsLabel(x.rows)))].join(', ');
  const peerSeconds = p.runs
    .filter((x) => x.method === 'pgroll' || x.method === 'reshape')
    .reduce((sum, x) => sum + x.seconds, 0);
  out.push(
    "Each change backfilled five ways, each on a fresh copy of the same table (`generate_series`, `VACUUM ANALYZE`, then a `CHECKPOINT`). pgroll and reshape cannot be built here (Go modules, Rust crates), so their backfills are reproduced statement for statement from their sources in bench/cases/peers-tools.ts (its header names the files and commits followed and what was simplified): pgroll's `_pgroll_needs_backfill` column and its `BEFORE INSERT OR UPDATE` PL/pgSQL trigger that reads `search_path` for every row (two triggers, up and down, for the type change), then batches of 1000 by primary key, each a transaction of `SELECT … FOR NO KEY UPDATE` and a no-op `UPDATE t SET id = id` that fires the trigger, no delay; reshape's triggers calling `reshape.is_new_schema()` for every row, then batches of 1000 by primary key in autocommit, a no-op `UPDATE` of the touched column, the primary key looked up again for each batch. phaseflag runs in a child process with its default settings, in dual-write; its time includes the rebuild of the indexes it bloated (`REINDEX INDEX CONCURRENTLY`, on by default), which is why its table ends smaller, and the peers rebuild nothing. The single UPDATE and the OFFSET loop have no trigger, so rows the application writes during them are left stale (the last column). The OFFSET loop stops after " +
      `${secs(p.offsetCapSeconds)} and the rest is extrapolated, as in case 1. The application (case 4's writer and reader, 2 ms pauses) runs for ${secs(p.baselineSeconds)} with no backfill, then during the backfill, on the same table. The case runs at ${sizes} rows only (\`--rows\` adds no size here, to keep it within 4 minutes): at ten times the rows, pgroll's and reshape's runs alone would take about ${secs(peerSeconds * 10)} here, without the tables built for them.`,
  );
  out.push('');
  const rows: string[][] = [];
  for (const size of [...new Set(p.runs.map((x) => x.rows))]) {
    for (const change of [...new Set(p.runs.map((x) => x.change))]) {
      const single = p.runs.find((x) => x.method === 'single-update' && x.change === change && x.rows === size);
      for (const run of p.runs.filter((x) => x.change === change && x.rows === size)) {
        const extrapolated =
          run.offset && !run.offset.completed
            ? ` (extrapolated: measured ${int(run.offset.rowsMeasured)} rows in ${secs(run.offset.secondsMeasured)})`
            : '';
        rows.push([
          rowsLabel(size),
          change,
          PEER_LABEL[run.method],
          `${secs(run.seconds)}${extrapolated}`,
          int(run.rowsPerSecond),
          single ? ratio(run.rowsPerSecond / single.rowsPerSecond) : '—',
          run.batches !== undefined ? int(run.batches) : '—',
          p99Of(run, 'read'),
          p99Of(run, 'write'),
          `${ms(run.traffic.during.lockWait.longestMs)} (${run.traffic.during.lockWait.statementsWaiting} waited); ${ms(run.traffic.during.write.maxMs)}`,
          run.offset && !run.offset.completed
            ? '— (partial run)'
            : `${mb(run.before.total)} → ${mb(run.after.total)} (${ratio(run.after.total / run.before.total)})`,
          run.offset && !run.offset.completed
            ? '—'
            : `${mb(run.before.heap)} → ${mb(run.after.heap)} (${ratio(run.after.heap / run.before.heap)})`,
          rightLabel(run),
        ]);
      }
    }
  }
  out.push(
    table(
      [
        'rows',
        'change',
        'method',
        'time',
        'rows/s',
        'vs single UPDATE',
        'batches',
        'app read p99 during (vs no backfill)',
        'app write p99 during (vs no backfill)',
        'longest lock wait (statements that waited); slowest write',
        'total size',
        'heap',
        'rows wrong after',
      ],
      rows,
    ),
  );
  const lockTypes = [...new Set(p.runs.flatMap((x) => x.traffic.during.lockWait.lockTypes))];
  out.push(
    '',
    "The lock watcher samples `pg_stat_activity` every 10 ms from the bench's own process, so a sampling loop the loaded machine stalls stretches the wait it sees" +
      (lockTypes.every((x) => x === 'transactionid' || x === 'tuple')
        ? '; every wait here is on a row (`transactionid`: a write behind a row a batch holds), which only the writer takes, so the slowest write, timed by the application, bounds them too.'
        : `; the waits were on ${lockTypes.map((x) => `\`${x}\``).join(', ')}.`),
  );
  const retouched = p.runs.filter(
    (x) => x.method === 'reshape' && (x.batches ?? 0) > 1.05 * Math.ceil(x.rows / PEER_BATCH),
  );
  if (retouched.length)
    out.push(
      '',
      `reshape took more batches than rows ÷ ${PEER_BATCH} (${retouched.map((x) => `${x.change}, ${rowsLabel(x.rows)}: ${int(x.batches ?? NaN)}`).join('; ')}): its cursor is \`LAST_VALUE(pk) OVER ()\` over the rows the UPDATE returns, in the join's order; when the planner joins by hash (a small table) the cursor can fall behind the batch's largest key, and the next batches touch rows again. pgroll has the same cursor but skips rows already done (\`_pgroll_needs_backfill\`).`,
    );
  const baselines = p.runs.map(
    (x) =>
      `${x.change}/${x.method}: read ${ms(x.traffic.baseline.read.p99Ms)}, write ${ms(x.traffic.baseline.write.p99Ms)}`,
  );
  if (baselines.length) out.push('', `No-backfill p99 on each table: ${baselines.join('; ')}.`);
  return out.join('\n');
}

function rightLabel(run: PeerRun): string {
  if (run.wrongRows === null) return '— (partial run)';
  if (run.wrongRows === 0) return 'none';
  const noTrigger = run.method === 'single-update' || run.method === 'offset-loop';
  return noTrigger
    ? `${int(run.wrongRows)} (no trigger: rows the application wrote during the run)`
    : `**${int(run.wrongRows)}**`;
}
