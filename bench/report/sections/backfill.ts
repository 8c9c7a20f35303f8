/** The sections of RESULTS.md for cases 1, 2 and 7: backfill throughput, what it leaves behind, its memory. */
import type { BackfillCase, BackfillRun } from '../../cases/backfill.js';
import { int, mb, ms, ratio, rowsLabel, secs, signed, table } from '../../lib/format.js';
import { formatWaits } from '../../lib/pg-stats.js';

import { runOf, type BenchResults } from '../results.js';
import { METHOD_LABEL } from './method-label.js';

export function backfillSection(r: BenchResults, b: BackfillCase): string {
  const out = ['## 1. Backfill throughput', ''];
  out.push(
    "Each row is a fresh copy of the same table (built with `generate_series`, then `VACUUM ANALYZE`), after a `CHECKPOINT`. phaseflag runs in a child process (for case 7) with its default batch settings (5000 rows to start, adapted towards 30 ms per batch), in dual-write: its batches skip the migration's own sync trigger when nothing else on the table needs triggers to fire (they do here: see the column) and fire them otherwise; the single UPDATE has no trigger. The LIMIT/OFFSET loop is the charitable version (one set-based UPDATE per batch of 1000, not a statement per row); it is quadratic, so it stops after " +
      secs(r.offsetCapSeconds) +
      ' and the rest is extrapolated from a straight-line fit of batch time against offset. Once its last batch has committed, phaseflag rebuilds the indexes the backfill bloated (`REINDEX INDEX CONCURRENTLY`, reads and writes go on: section 2); "time" and rows/s are the backfill\'s own, without that rebuild, which has its own column (the single UPDATE leaves its indexes bloated too).',
  );
  out.push('');
  const rows: string[][] = [];
  for (const size of r.sizes) {
    for (const change of [...new Set(b.runs.map((x) => x.change))]) {
      const single = runOf(b, 'single-update', change, size);
      for (const method of ['single-update', 'phaseflag-1', 'phaseflag-n', 'offset-loop'] as const) {
        const run = runOf(b, method, change, size);
        if (!run) continue;
        const extrapolated =
          run.offset && !run.offset.completed
            ? ` (extrapolated: measured ${int(run.offset.rowsMeasured)} rows in ${secs(run.offset.secondsMeasured)})`
            : '';
        rows.push([
          rowsLabel(size),
          change,
          `${METHOD_LABEL[method]}${method === 'phaseflag-n' ? ` (${run.workers})` : ''}`,
          `${secs(run.seconds)}${extrapolated}`,
          int(run.rowsPerSecond),
          single ? ratio(run.rowsPerSecond / single.rowsPerSecond) : '—',
          run.batches !== undefined ? String(run.batches) : '—',
          run.engine
            ? `${run.engine.batchesWithoutTriggers ?? 0}; ${run.engine.vacuums ?? 0} (${secs((run.engine.vacuumMs ?? 0) / 1000)})`
            : '—',
          run.engine ? reindexLabel(run) : '—',
          run.correct ? 'yes' : '**NO**',
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
        'batches without triggers; VACUUMs (their time)',
        'then indexes rebuilt (their time, not in "time")',
        'every row right',
      ],
      rows,
    ),
  );
  if (r.diagnosis?.length) {
    out.push('', "### Where a batch's time goes", '');
    out.push(
      "One batch of the engine's UPDATE, on a table in dual-write, under `EXPLAIN (ANALYZE, BUFFERS, WAL)` inside a transaction that is rolled back, three times on the same rows: with the sync trigger firing, with it skipped as the engine skips it (`session_replication_role = replica`), and with no trigger on the table (dropped inside the rolled-back transaction).",
    );
    out.push('');
    out.push(
      table(
        [
          'change',
          'rows',
          'with sync trigger',
          'of which in the trigger function',
          'trigger skipped (as the engine does)',
          'no trigger on the table',
          'firing adds',
          'a skipped trigger still adds (time; WAL)',
          'WAL',
          'buffers hit / read',
        ],
        r.diagnosis.map((d) => [
          d.change,
          int(d.rows),
          ms(d.withTriggerMs),
          ms(d.triggerMs),
          ms(d.withoutTriggerMs),
          d.noTriggerMs ? ms(d.noTriggerMs) : '—',
          `${signed((d.withTriggerMs / d.withoutTriggerMs - 1) * 100)}%`,
          d.noTriggerMs
            ? `${signed((d.withoutTriggerMs / d.noTriggerMs - 1) * 100)}%; ${mb(d.skippedWalBytes)} vs ${mb(d.noTriggerWalBytes)}`
            : '—',
          mb(d.walBytes),
          `${int(d.sharedHit)} / ${int(d.sharedRead)}`,
        ]),
      ),
    );
    out.push(
      '',
      'The trigger function\'s own time undercounts the trigger: with a BEFORE ROW trigger the executor also fetches the old row for it and hands it a copy of the new one, for every row, which shows only in the difference between the two runs. This is why the backfill now skips the sync trigger on its own rows when nothing else on the table needs triggers to fire (the "batches without triggers" column above), and fires them as usual otherwise. Skipping is not free either: for any BEFORE UPDATE row trigger Postgres locks each row (heap_lock_tuple, one more WAL record) before it looks at session_replication_role or a WHEN clause (GetTupleForTrigger in ExecBRUpdateTriggers), so the skipped run still costs more than the same UPDATE on the table with no trigger, which is what the single UPDATE baseline is.',
    );
  }
  const waitRows = b.runs
    .filter((x) => x.waits && x.rows === r.sizes[r.sizes.length - 1])
    .map((x) => [x.change, METHOD_LABEL[x.method], formatWaits(x.waits!, 6), String(x.waits!.samples)]);
  if (waitRows.length) {
    out.push('', '### Wait events of the backends doing the work (sampled every 50 ms, largest size)', '');
    out.push(table(['change', 'method', 'share of samples', 'samples'], waitRows));
    out.push(
      '',
      '"CPU" is an active backend with no wait event. IO:WALSync/WALWrite is commit and WAL flushing, IO:DataFileExtend and Lock:extend growing the table, LWLock:WALInsert/WALWrite contention between backends writing WAL.',
    );
  }
  return out.join('\n');
}

export function leftBehindSection(r: BenchResults, b: BackfillCase): string {
  const out = ['## 2. What the backfill leaves behind', ''];
  out.push(
    "Sizes right after the run (for phaseflag, after the indexes it rebuilds once the backfill completes, `REINDEX INDEX CONCURRENTLY`: see the last column); WAL is the `pg_current_wal_lsn()` difference over the run (cluster-wide, so other sessions' WAL is included) and, for the single UPDATE, the statement's own WAL from `EXPLAIN (ANALYZE, WAL)`. n_dead_tup and the VACUUM and autovacuum columns are `pg_stat_user_tables` right after the run. phaseflag's backfill runs `VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED)` every 2.5% of the table while it works (packages/postgres/src/operations/backfill/reclaim.ts) so later batches reuse the space earlier ones freed, and once it completes rebuilds each index larger than a fresh build would be (packages/postgres/src/operations/backfill/reindex.ts); \"least possible\" is a fresh copy of the same rows with the new column filled and every index of the table built fresh on it (`CREATE TABLE AS`, then the same `CREATE INDEX` statements), measured in the same run.",
  );
  out.push('');
  const rows: string[][] = [];
  for (const size of r.sizes) {
    for (const run of b.runs.filter((x) => x.rows === size && x.method !== 'offset-loop')) {
      rows.push([
        rowsLabel(size),
        run.change,
        METHOD_LABEL[run.method],
        `${mb(run.before.total)} → ${mb(run.after.total)} (${ratio(run.after.total / run.before.total)})`,
        `${mb(run.before.heap)} → ${mb(run.after.heap)} (${ratio(run.after.heap / run.before.heap)})`,
        `${mb(run.before.indexes)} → ${mb(run.after.indexes)}`,
        `${mb(run.wal.lsnBytes)}${run.statementWalBytes !== undefined ? ` (statement: ${mb(run.statementWalBytes)})` : ''}`,
        int(run.activity.nDeadTup),
        String(run.vacuumsDuring),
        run.activity.lastAutovacuum ?? 'never',
        run.engine ? reindexLabel(run) : '—',
      ]);
    }
  }
  const parallelVacuums = b.runs
    .filter((x) => x.method === 'phaseflag-n' && x.rows === r.sizes[r.sizes.length - 1])
    .map((x) => x.vacuumsDuring);
  const oneVacuums = b.runs
    .filter((x) => x.method === 'phaseflag-1' && x.rows === r.sizes[r.sizes.length - 1])
    .map((x) => x.vacuumsDuring);
  if (parallelVacuums.length && oneVacuums.length && Math.max(...parallelVacuums) < Math.min(...oneVacuums) / 2) {
    out.push(
      `With parallel workers fewer VACUUMs run (${parallelVacuums.join(', ')} against ${oneVacuums.join(', ')} with one worker at ${rowsLabel(r.sizes[r.sizes.length - 1]!)} rows): each takes longer while the workers keep the cores busy, and the next waits as long as the last took, so the table grows more. The size target is judged on the default, one worker.`,
      '',
    );
  }
  if (r.postgres.settings.autovacuum === 'off') {
    out.push(
      "**autovacuum is off on this server**, so no table here is ever vacuumed by it: the single UPDATE's dead tuples stay until someone runs VACUUM, while phaseflag's backfill leaves none behind whatever autovacuum does.",
      '',
    );
  }
  out.push(
    table(
      [
        'rows',
        'change',
        'method',
        'total size',
        'heap',
        'indexes',
        'WAL',
        'n_dead_tup after',
        'VACUUMs during the run',
        'last_autovacuum',
        'indexes rebuilt after (time)',
      ],
      rows,
    ),
  );
  const floors = Object.entries(b.floors);
  if (floors.length) {
    out.push('');
    out.push(
      table(
        ['change', 'least possible total (fresh copy, same indexes)', 'least possible heap', 'least possible indexes'],
        floors.map(([change, f]) => [
          change,
          `${mb(f.total)} (${ratio(f.total / f.beforeTotal)} before)`,
          `${mb(f.heap)} (${ratio(f.heap / f.beforeHeap)} before)`,
          mb(f.indexes),
        ]),
      ),
    );
  }
  return out.join('\n');
}

/** `1 (0.42 s)`: indexes phaseflag rebuilt after its backfill, and their time. */
export function reindexLabel(run: BackfillRun): string {
  return `${run.engine?.reindexes ?? 0} (${secs((run.engine?.reindexMs ?? 0) / 1000)})`;
}

export function memorySection(r: BenchResults, b: BackfillCase): string {
  const out = ['## 7. Memory of the backfill', ''];
  out.push(
    "Peak RSS (`VmHWM` from /proc/self/status) of the child process that ran the 1-worker backfill, which holds only the current checkpoint whatever the table's size. The 10M-row figure needs `--rows 10000000`; the default run compares its two largest sizes.",
  );
  out.push('');
  const rows = b.runs
    .filter((x) => x.method !== 'single-update' && x.method !== 'offset-loop' && x.peakRss)
    .map((x) => [
      rowsLabel(x.rows),
      x.change,
      METHOD_LABEL[x.method],
      mb(x.rssBefore ?? NaN),
      mb(x.peakRss!),
      mb(x.peakRss! - (x.rssBefore ?? NaN)),
      x.heapBefore == null || x.heapAfter == null ? '—' : `${mb(x.heapBefore)} → ${mb(x.heapAfter)}`,
    ]);
  out.push(
    table(
      [
        'rows',
        'change',
        'method',
        'RSS before the backfill',
        'peak RSS',
        'peak minus RSS before',
        'heap after a full GC, before → after',
      ],
      rows,
    ),
  );
  void r;
  return out.join('\n');
}
