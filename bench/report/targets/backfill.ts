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
          what: `backfill rows/s, ${CHANGES[change].label}, ${rowsLabel(size)} rows, 1 worker, default settings`,
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

/** 2: the table's size after the backfill, whole and heap only. */
export function sizeTargets(r: BenchResults, b: BackfillCase): Target[] {
  const t: Target[] = [];
  const changes = changesOf(b);
  const largest = r.sizes[r.sizes.length - 1]!;
  for (const change of changes) {
    const one = runOf(b, 'phaseflag-1', change, largest);
    const single = runOf(b, 'single-update', change, largest);
    const floor = b.floors[change];
    if (!one) continue;
    const total = one.after.total / one.before.total;
    const heap = one.after.heap / one.before.heap;
    const idx = one.after.indexes / one.before.indexes;
    const floorTotal = floor ? floor.total / floor.beforeTotal : NaN;
    const floorHeap = floor ? floor.heap / floor.beforeHeap : NaN;
    const singleNote = single
      ? `; single UPDATE: ${ratio(single.after.total / single.before.total)} total, ${ratio(single.after.heap / single.before.heap)} heap`
      : '';
    t.push({
      id: `2 ${change}`,
      what: `table size after the backfill, ${CHANGES[change].label}, ${rowsLabel(largest)} rows: pg_total_relation_size`,
      figure: `${mb(one.before.total)} → ${mb(one.after.total)} = ${ratioNear(total, 1.2)}${singleNote}`,
      target: '≤ 1.2× before',
      pass: total <= 1.2,
      limit:
        total <= 1.2
          ? ''
          : [
              `the primary-key index grows ${ratio(idx)} (${mb(one.before.indexes)} → ${mb(one.after.indexes)}): on pages filled to the brim no update can stay on its page (HOT), so every new row version gets a new index entry, and a btree never gives leaf pages back`,
              floorTotal > 1.2
                ? `the new column's own bytes already make a freshly written copy ${ratio(floorTotal)}`
                : `a freshly written copy with the column would be ${ratio(floorTotal)}`,
              'REINDEX INDEX CONCURRENTLY (online) afterwards returns the index to its size',
            ].join('; '),
    });
    t.push({
      id: `2 ${change}`,
      what: 'same, heap only: pg_relation_size',
      figure: `${mb(one.before.heap)} → ${mb(one.after.heap)} = ${ratioNear(heap, 1.2)} (least possible: ${ratio(floorHeap)})${single ? `; single UPDATE ${ratio(single.after.heap / single.before.heap)}` : ''}`,
      target: '≤ 1.2× before',
      pass: heap <= 1.2,
      limit:
        heap <= 1.2
          ? ''
          : floorHeap > 1.2
            ? `the new column's own bytes: a freshly written copy of the same rows with the column filled is already ${ratio(floorHeap)} the heap before, so no method can reach 1.2×; phaseflag ends ${ratio(heap / floorHeap)} above that floor`
            : `the space freed by a batch is reused only after the backfill's next VACUUM (${one.vacuumsDuring} VACUUMs during the run); until then new versions extend the table`,
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
        limit:
          Math.abs(x - 1) <= 0.1
            ? ''
            : `RSS before the backfill: ${mb(a.rssBefore ?? NaN)} and ${mb(z.rssBefore ?? NaN)}`,
      });
    }
  }
  return t;
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
  if (diag) {
    const singleMs = (diag.rows / single.rowsPerSecond) * 1000;
    parts.push(
      `what is left is the batched UPDATE itself: ${int(diag.rows)} rows by primary-key range take ${ms(diag.withoutTriggerMs)} under EXPLAIN ANALYZE (no trigger), the single UPDATE's sequential scan ${ms(singleMs)} for as many rows`,
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
