/** The targets of cases 1, 2 and 7: backfill throughput, the table size it leaves, the memory it takes. */
import type { BackfillCase, BackfillRun } from '../../cases/backfill.js';
import type { BatchDiagnosis } from '../../cases/diagnose.js';
import { int, mb, ms, ratio, ratioNear, rowsLabel, secs, signed } from '../../lib/format.js';
import { CHANGES } from '../../lib/orders.js';
import { formatWaits } from '../../lib/pg-stats.js';

import { runOf, type BenchResults } from '../results.js';
import type { Target } from './target.js';

const changesOf = (b: BackfillCase) => [...new Set(b.runs.map((x) => x.change))];

/** 1: rows/s against the single UPDATE and the LIMIT/OFFSET loop, and as the table grows. */
export function throughputTargets(r: BenchResults, b: BackfillCase): Target[] {
  const t: Target[] = [];
  const changes = changesOf(b);
  const largest = r.sizes[r.sizes.length - 1]!;
  const smallest = r.sizes[0]!;
  // Throughput is judged at 1M rows and every larger size (the largest alone in a quick run).
  const judgedSizes = r.sizes.filter((x) => x >= 1_000_000).length ? r.sizes.filter((x) => x >= 1_000_000) : [largest];
  for (const change of changes) {
    for (const size of judgedSizes) {
      const single = runOf(b, 'single-update', change, size);
      const one = runOf(b, 'phaseflag-1', change, size);
      const par = runOf(b, 'phaseflag-n', change, size);
      const offset = runOf(b, 'offset-loop', change, size);
      const diag = r.diagnosis?.find((d) => d.change === change);
      if (single && one) {
        const x = one.rowsPerSecond / single.rowsPerSecond;
        t.push({
          id: `1 ${change}`,
          what: `backfill rows/s, ${CHANGES[change].label}, ${rowsLabel(size)} rows, 1 worker, default settings (the index rebuild that follows it is reported in section 2, not counted here)`,
          figure: `${int(one.rowsPerSecond)} vs single UPDATE ${int(single.rowsPerSecond)} rows/s = ${ratioNear(x, 1)}`,
          target: '≥ 1.0× single UPDATE',
          pass: x >= 1.0,
          limit: x >= 1.0 ? '' : backfillLimit(one, single, diag, r),
        });
      }
      if (single && par) {
        const x = par.rowsPerSecond / single.rowsPerSecond;
        t.push({
          id: `1 ${change}`,
          what: `same, ${rowsLabel(size)} rows, ${par.workers} parallel workers`,
          figure: `${int(par.rowsPerSecond)} vs ${int(single.rowsPerSecond)} rows/s = ${ratioNear(x, 1.25)}`,
          target: '≥ 1.25× single UPDATE',
          pass: x >= 1.25,
          limit:
            x >= 1.25
              ? ''
              : `${par.workers} workers on ${r.machine.cores} cores, with their VACUUMs, their Node process and the orchestrator; backends writing WAL wait for each other (LWLock:WALWrite: wal_buffers is ${r.postgres.settings.wal_buffers ?? '?'}); ${backfillLimit(par, single, diag, r)}`,
        });
      }
      if (one && offset) {
        const x = one.rowsPerSecond / offset.rowsPerSecond;
        t.push({
          id: `1 ${change}`,
          what: `hand-written LIMIT/OFFSET loop left far behind, ${rowsLabel(size)} rows`,
          figure: `phaseflag ${ratio(x)} the loop's rows/s (loop: ${secs(offset.seconds)}${offset.offset?.completed ? '' : ', extrapolated'})`,
          target: '"far behind": we read it as ≥ 10×',
          pass: x >= 10,
          limit:
            x >= 10
              ? ''
              : `the loop's OFFSET cost grows with the table; at ${rowsLabel(size)} rows it has not yet grown enough`,
        });
      }
    }
    for (const size of r.sizes.filter((x) => x !== smallest)) {
      const big = runOf(b, 'phaseflag-1', change, size);
      const small = runOf(b, 'phaseflag-1', change, smallest);
      if (big && small) {
        const x = big.rowsPerSecond / small.rowsPerSecond;
        t.push({
          id: `1 ${change}`,
          what: `throughput does not fall as the table grows (1 worker), ${rowsLabel(size)} vs ${rowsLabel(smallest)}`,
          figure: `${rowsLabel(size)}: ${int(big.rowsPerSecond)} rows/s vs ${rowsLabel(smallest)}: ${int(small.rowsPerSecond)} rows/s = ${ratioNear(x, 0.8)}`,
          target: `within 20% (must not fall: ≥ 0.80×)`,
          pass: x >= 0.8,
          limit:
            x >= 0.8
              ? ''
              : `per-row cost grows with the table: ${rowsLabel(smallest)} run ${secs(small.seconds)} (${small.batches} batches), ${rowsLabel(size)} run ${secs(big.seconds)} (${big.batches} batches); waits at ${rowsLabel(size)}: ${big.waits ? formatWaits(big.waits) : 'n/a'}`,
        });
      }
    }
  }
  return t;
}

/**
 * 2: the table's size after the backfill (and the index rebuild that follows it), whole against the least possible
 * (a fresh copy with the column filled and the same indexes, built in the same run); heap and "before" as figures.
 */
export function sizeTargets(r: BenchResults, b: BackfillCase): Target[] {
  const t: Target[] = [];
  const changes = changesOf(b);
  const largest = r.sizes[r.sizes.length - 1]!;
  for (const change of changes) {
    const one = runOf(b, 'phaseflag-1', change, largest);
    const single = runOf(b, 'single-update', change, largest);
    const floor = b.floors[change];
    if (!one) continue;
    const before = one.after.total / one.before.total;
    const heapBefore = one.after.heap / one.before.heap;
    const total = floor ? one.after.total / floor.total : NaN;
    const heap = floor ? one.after.heap / floor.heap : NaN;
    const indexes = floor ? one.after.indexes / floor.indexes : NaN;
    const singleNote = single
      ? `; single UPDATE: ${ratio(single.after.total / single.before.total)} before, ${floor ? `${ratio(single.after.total / floor.total)} least possible` : ''}`
      : '';
    const reindex = one.engine
      ? `${one.engine.reindexes ?? 0} index(es) rebuilt after the backfill in ${secs((one.engine.reindexMs ?? 0) / 1000)}`
      : 'no engine result';
    t.push({
      id: `2 ${change}`,
      what: `table size after the backfill, ${CHANGES[change].label}, ${rowsLabel(largest)} rows: pg_total_relation_size (heap and every index) against the least possible (a fresh copy with the column filled and the same indexes)`,
      figure: floor
        ? `${mb(one.after.total)} vs least possible ${mb(floor.total)} = ${ratioNear(total, 1.05)} (${mb(one.before.total)} before: ${ratio(before)}); ${reindex}${singleNote}`
        : 'least possible not measured',
      target: '≤ 1.05× least possible',
      pass: floor ? total <= 1.05 : null,
      limit:
        !floor || total <= 1.05
          ? ''
          : [
              `heap ${ratio(heap)} its least possible (${mb(one.after.heap)} vs ${mb(floor.heap)}), indexes ${ratio(indexes)} theirs (${mb(one.after.indexes)} vs ${mb(floor.indexes)})`,
              indexes > 1.05
                ? (one.engine?.reindexes ?? 0) === 0
                  ? 'no index was rebuilt after the backfill (see the warnings of the run: lock_timeout, privileges)'
                  : 'an index was rebuilt yet stays above a fresh build'
                : `the heap: the space a batch frees is reused only after the backfill's next VACUUM (${one.vacuumsDuring} VACUUMs during the run), so the table grows by about one VACUUM interval, and the pages it grew by are not given back (TRUNCATE needs ACCESS EXCLUSIVE)`,
            ].join('; '),
    });
    t.push({
      id: `2 ${change}`,
      what: 'same, heap only: pg_relation_size',
      figure: floor
        ? `${mb(one.after.heap)} = ${ratio(heap)} least possible (${mb(floor.heap)}), ${ratio(heapBefore)} before (${mb(one.before.heap)}; the least possible is ${ratio(floor.heap / floor.beforeHeap)} before)${single ? `; single UPDATE ${ratio(single.after.heap / single.before.heap)} before` : ''}`
        : `${mb(one.before.heap)} → ${mb(one.after.heap)} = ${ratio(heapBefore)} before`,
      target: 'figure (the total above is the target)',
      pass: null,
      info: true,
      limit: '',
    });
  }
  return t;
}

/** 7: the backfill process's peak RSS at the two largest sizes. */
export function memoryTargets(r: BenchResults, b: BackfillCase): Target[] {
  const t: Target[] = [];
  const changes = changesOf(b);
  if (r.sizes.length >= 2) {
    const big = r.sizes[r.sizes.length - 1]!;
    const small = r.sizes[r.sizes.length - 2]!;
    for (const change of changes) {
      const a = runOf(b, 'phaseflag-1', change, small);
      const z = runOf(b, 'phaseflag-1', change, big);
      if (!a?.peakRss || !z?.peakRss) continue;
      const x = z.peakRss / a.peakRss;
      t.push({
        id: `7 ${change}`,
        what: `peak RSS of the backfill process, ${rowsLabel(small)} vs ${rowsLabel(big)} rows (${change})${big < 10_000_000 ? '; 10M only with --rows 10000000' : ''}`,
        figure: `${mb(a.peakRss)} vs ${mb(z.peakRss)} = ${ratio(x)}`,
        target: 'within 10%',
        pass: Math.abs(x - 1) <= 0.1,
        limit: Math.abs(x - 1) <= 0.1 ? '' : memoryLimit(a, z),
      });
    }
  }
  return t;
}

/**
 * Why the peak RSS grew: what a full garbage collection leaves of the heap after each run, beside what it left
 * before, says whether the run kept anything that grows with the table or the peak only counts uncollected garbage.
 */
function memoryLimit(a: BackfillRun, z: BackfillRun): string {
  const rss = `RSS before the backfill: ${mb(a.rssBefore ?? NaN)} and ${mb(z.rssBefore ?? NaN)}`;
  if (a.heapBefore == null || a.heapAfter == null || z.heapBefore == null || z.heapAfter == null) return rss;
  const kept = (run: BackfillRun) => run.heapAfter! - run.heapBefore!;
  const heaps = `the heap after a full garbage collection went ${mb(a.heapBefore)} → ${mb(a.heapAfter)} over the ${rowsLabel(a.rows)}-row run (${a.batches ?? '?'} batches) and ${mb(z.heapBefore)} → ${mb(z.heapAfter)} over the ${rowsLabel(z.rows)}-row run (${z.batches ?? '?'} batches)`;
  const grows = kept(z) - kept(a) > 1024 * 1024;
  return `${rss}; ${heaps}: ${grows ? 'the larger run kept more than 1 MB more, which grows with the table' : 'nothing the run keeps grows with the table, so the difference is garbage the collector had not yet collected when the peak was reached (V8 grows its heap before it collects)'}`;
}

function backfillLimit(
  run: BackfillRun,
  single: BackfillRun,
  diag: BatchDiagnosis | undefined,
  r: BenchResults,
): string {
  const parts: string[] = [];
  const e = run.engine;
  const skipped = e?.batchesWithoutTriggers ?? 0;
  if (e && skipped > 0) {
    parts.push(
      `${skipped} of ${e.batches} batches skipped the sync trigger (session_replication_role, packages/postgres/src/operations/backfill/statements.ts)`,
    );
  } else if (diag) {
    parts.push(
      `the sync trigger fired on the backfill's own rows: one ${int(diag.rows)}-row batch takes ${ms(diag.withTriggerMs)} with it and ${ms(diag.withoutTriggerMs)} without (${signed((diag.withTriggerMs / diag.withoutTriggerMs - 1) * 100)}%); the single UPDATE has no trigger`,
    );
  }
  if (diag?.noTriggerMs) {
    parts.push(
      `a BEFORE UPDATE trigger costs even when it does not fire: Postgres locks each row for it (GetTupleForTrigger: heap_lock_tuple and a WAL record) before it looks at session_replication_role, so one ${int(diag.rows)}-row batch takes ${ms(diag.withoutTriggerMs)} with the sync trigger skipped against ${ms(diag.noTriggerMs)} with no trigger on the table (${signed((diag.withoutTriggerMs / diag.noTriggerMs - 1) * 100)}%, WAL ${mb(diag.skippedWalBytes)} vs ${mb(diag.noTriggerWalBytes)}); the single UPDATE has no trigger`,
    );
  }
  if (diag) {
    const singleMs = (diag.rows / single.rowsPerSecond) * 1000;
    parts.push(
      `the batched UPDATE itself: ${int(diag.rows)} rows by primary-key range take ${ms(diag.noTriggerMs || diag.withoutTriggerMs)} under EXPLAIN ANALYZE with no trigger, the single UPDATE ${ms(singleMs)} for as many rows (its whole run's rate)`,
    );
  }
  if (e?.vacuums)
    parts.push(
      `${e.vacuums} VACUUMs (${secs((e.vacuumMs ?? 0) / 1000)}) ran beside the workers on the same ${r.machine.cores} cores`,
    );
  if (run.waits) parts.push(`waits: ${formatWaits(run.waits)}`);
  const walRatio = run.wal.lsnBytes / (single.statementWalBytes || single.wal.lsnBytes);
  if (Number.isFinite(walRatio) && walRatio > 1.1) parts.push(`WAL ${ratio(walRatio)} the single UPDATE's`);
  return parts.join('; ');
}
