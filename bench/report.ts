/**
 * Turns one run's figures into bench/RESULTS.md: every target of issue 6 with its figure, its baseline from the
 * same run, the ratio, pass or MISSED, and for each miss what limits it, from the diagnostics the run collected.
 */
import type { BackfillCase, BackfillRun, Method } from './cases/backfill.js';
import type { BatchDiagnosis } from './cases/diagnose.js';
import type { ExpandRun } from './cases/expand-lock.js';
import type { PropagationCase } from './cases/propagation.js';
import type { RouterOverhead } from './cases/router-overhead.js';
import { GENTLE_BATCH, type TrafficMethod, type TrafficRun } from './cases/traffic.js';
import type { WriteAmplificationCase } from './cases/write-amplification.js';
import { fixed, int, mb, ms, ratio, rowsLabel, secs, table, verdict } from './lib/format.js';
import type { MachineFacts, PostgresFacts } from './lib/machine.js';
import { CHANGES, type ChangeKind } from './lib/orders.js';
import { formatWaits } from './lib/pg-stats.js';
import { median } from './lib/stats.js';

export interface BenchResults {
  command: string;
  quick: boolean;
  startedAt: string;
  durationSeconds: number;
  machine: MachineFacts;
  postgres: PostgresFacts;
  databaseKind: string;
  sizes: number[];
  workers: number;
  offsetCapSeconds: number;
  backfill?: BackfillCase;
  diagnosis?: BatchDiagnosis[];
  writeAmplification?: WriteAmplificationCase;
  traffic?: TrafficRun[];
  expand?: ExpandRun[];
  router?: RouterOverhead;
  propagation?: PropagationCase;
  errors: { case: string; message: string }[];
}

interface Target {
  id: string;
  what: string;
  figure: string;
  target: string;
  /** null: a figure with no pass/fail (a contrast, or a case without a target), or not measured. */
  pass: boolean | null;
  limit: string;
  /** For pass null: "figure only" rather than "not measured". */
  info?: boolean;
}

const MiB = 1024 * 1024;
const HEAP_GROWTH_LIMIT = MiB;

export function renderResults(r: BenchResults): string {
  const targets = collectTargets(r);
  const passed = targets.filter((t) => t.pass === true).length;
  const missed = targets.filter((t) => t.pass === false).length;
  const judged = targets.filter((t) => !t.info).length;
  const out: string[] = [];
  out.push('# phaseflag benchmarks');
  out.push('');
  out.push(`Written by \`${r.command}\` (bench/run.ts) on ${r.startedAt}, in ${secs(r.durationSeconds)}. Do not edit by hand: rerun the benchmark.`);
  if (r.quick) out.push('', '> **Quick smoke run** (`--quick`): tiny tables, short windows. It proves the benchmark runs; its figures mean little. Run `npm run bench` for real figures.');
  out.push('');
  out.push(`**${passed} of ${judged} targets pass, ${missed} missed${judged - passed - missed ? `, ${judged - passed - missed} not measured` : ''}** (and ${targets.length - judged} figures without a target). Every figure is compared with its baseline measured in the same run on the same data, because the machine is shared and noisy: ratios travel, absolute figures do not.`);
  if (r.errors.length) out.push('', ...r.errors.map((e) => `- **case ${e.case} failed**: ${e.message}`));
  out.push('', '## The machine', '');
  out.push(machineSection(r));
  out.push('', '## Targets', '');
  out.push(table(['#', 'what', 'figure (baseline from the same run)', 'target', 'result', 'what limits it'], targets.map((t) => [t.id, t.what, t.figure, t.target, t.info ? 'figure only' : verdict(t.pass), t.limit || '—'])));
  if (r.backfill) out.push('', backfillSection(r, r.backfill));
  if (r.backfill) out.push('', leftBehindSection(r, r.backfill));
  if (r.writeAmplification) out.push('', writeSection(r.writeAmplification));
  if (r.traffic) out.push('', trafficSection(r.traffic));
  if (r.expand) out.push('', expandSection(r.expand));
  if (r.router) out.push('', routerSection(r.router));
  if (r.backfill) out.push('', memorySection(r, r.backfill));
  out.push('', propagationSection(r.propagation));
  out.push('', methodSection(r));
  return `${out.join('\n')}\n`;
}

// ---- targets ------------------------------------------------------------------------------------------------

function runOf(b: BackfillCase, method: Method, change: ChangeKind, rows: number): BackfillRun | undefined {
  return b.runs.find((x) => x.method === method && x.change === change && x.rows === rows);
}

function collectTargets(r: BenchResults): Target[] {
  const t: Target[] = [];
  const changes = r.backfill ? [...new Set(r.backfill.runs.map((x) => x.change))] : [];
  const largest = r.sizes[r.sizes.length - 1]!;
  const smallest = r.sizes[0]!;
  const b = r.backfill;
  if (b) {
    for (const change of changes) {
      const single = runOf(b, 'single-update', change, largest);
      const one = runOf(b, 'phaseflag-1', change, largest);
      const par = runOf(b, 'phaseflag-n', change, largest);
      const offset = runOf(b, 'offset-loop', change, largest);
      const diag = r.diagnosis?.find((d) => d.change === change);
      if (single && one) {
        const x = one.rowsPerSecond / single.rowsPerSecond;
        t.push({
          id: `1 ${change}`, what: `backfill rows/s, ${CHANGES[change].label}, ${rowsLabel(largest)} rows, 1 worker, default settings`,
          figure: `${int(one.rowsPerSecond)} vs single UPDATE ${int(single.rowsPerSecond)} rows/s = ${ratio(x)}`,
          target: '≥ 0.85× single UPDATE', pass: x >= 0.85, limit: x >= 0.85 ? '' : backfillLimit(one, single, diag),
        });
      }
      if (single && par) {
        const x = par.rowsPerSecond / single.rowsPerSecond;
        t.push({
          id: `1 ${change}`, what: `same, ${par.workers} parallel workers`,
          figure: `${int(par.rowsPerSecond)} vs ${int(single.rowsPerSecond)} rows/s = ${ratio(x)}`,
          target: '≥ 1.0× single UPDATE', pass: x >= 1.0,
          limit: x >= 1.0 ? '' : `${r.machine.cores} cores shared by ${par.workers} workers' backends, the backfill's VACUUMs, the Node runner and the orchestrator; ${backfillLimit(par, single, diag)}`,
        });
      }
      if (one && offset) {
        const x = one.rowsPerSecond / offset.rowsPerSecond;
        t.push({
          id: `1 ${change}`, what: `hand-written LIMIT/OFFSET loop left far behind, ${rowsLabel(largest)} rows`,
          figure: `phaseflag ${ratio(x)} the loop's rows/s (loop: ${secs(offset.seconds)}${offset.offset?.completed ? '' : ', extrapolated'})`,
          target: '"far behind": we read it as ≥ 10×', pass: x >= 10,
          limit: x >= 10 ? '' : `the loop's OFFSET cost grows with the table; at ${rowsLabel(largest)} rows it has not yet grown enough`,
        });
      }
      for (const size of r.sizes.filter((x) => x !== smallest)) {
        const big = runOf(b, 'phaseflag-1', change, size);
        const small = runOf(b, 'phaseflag-1', change, smallest);
        if (big && small) {
          const x = big.rowsPerSecond / small.rowsPerSecond;
          t.push({
            id: `1 ${change}`, what: `throughput does not fall as the table grows (1 worker), ${rowsLabel(size)} vs ${rowsLabel(smallest)}`,
            figure: `${rowsLabel(size)}: ${int(big.rowsPerSecond)} rows/s vs ${rowsLabel(smallest)}: ${int(small.rowsPerSecond)} rows/s = ${ratio(x)}`,
            target: `within 20% (must not fall: ≥ 0.80×)`, pass: x >= 0.8,
            limit: x >= 0.8 ? '' : `per-row cost grows with the table: ${rowsLabel(smallest)} run ${secs(small.seconds)} (${small.batches} batches), ${rowsLabel(size)} run ${secs(big.seconds)} (${big.batches} batches); waits at ${rowsLabel(size)}: ${big.waits ? formatWaits(big.waits) : 'n/a'}`,
          });
        }
      }
    }
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
      const singleNote = single ? `; single UPDATE: ${ratio(single.after.total / single.before.total)} total, ${ratio(single.after.heap / single.before.heap)} heap` : '';
      t.push({
        id: `2 ${change}`, what: `table size after the backfill, ${CHANGES[change].label}, ${rowsLabel(largest)} rows: pg_total_relation_size`,
        figure: `${mb(one.before.total)} → ${mb(one.after.total)} = ${ratio(total)}${singleNote}`,
        target: '≤ 1.2× before', pass: total <= 1.2,
        limit: total <= 1.2 ? '' : [
          `the primary-key index grows ${ratio(idx)} (${mb(one.before.indexes)} → ${mb(one.after.indexes)}): on pages filled to the brim no update can stay on its page (HOT), so every new row version gets a new index entry, and a btree never gives leaf pages back`,
          floorTotal > 1.2 ? `the new column's own bytes already make a freshly written copy ${ratio(floorTotal)}` : `a freshly written copy with the column would be ${ratio(floorTotal)}`,
          'REINDEX INDEX CONCURRENTLY (online) afterwards returns the index to its size',
        ].join('; '),
      });
      t.push({
        id: `2 ${change}`, what: 'same, heap only: pg_relation_size',
        figure: `${mb(one.before.heap)} → ${mb(one.after.heap)} = ${ratio(heap)} (least possible: ${ratio(floorHeap)})${single ? `; single UPDATE ${ratio(single.after.heap / single.before.heap)}` : ''}`,
        target: '≤ 1.2× before', pass: heap <= 1.2,
        limit: heap <= 1.2 ? '' : floorHeap > 1.2
          ? `the new column's own bytes: a freshly written copy of the same rows with the column filled is already ${ratio(floorHeap)} the heap before, so no method can reach 1.2×; phaseflag ends ${ratio(heap / floorHeap)} above that floor`
          : `the space freed by a batch is reused only after the backfill's next VACUUM (${one.vacuumsDuring} VACUUMs during the run); until then new versions extend the table`,
      });
    }
  }
  const wa = r.writeAmplification;
  if (wa) {
    for (const s of wa.statements) {
      const bulk = wa.bulk.find((x) => x.change === s.change && x.op === s.op);
      t.push({
        id: `3 ${s.change}`, what: `application ${s.op} of one row during dual-write, ${s.path === 'router' ? 'through router.row()' : 'plain SQL, sync trigger'} (${s.change})`,
        figure: `${fixed(s.dualWriteUs, 0)} µs vs ${fixed(s.beforeUs, 0)} µs before expand = ${ratio(s.ratio)}`,
        target: '≤ 1.5×', pass: s.ratio <= 1.5,
        limit: s.ratio <= 1.5 ? '' : `the sync trigger's PL/pgSQL call on every row written: server-side ${bulk ? `${fixed(bulk.beforeUsPerRow, 2)} → ${fixed(bulk.dualWriteUsPerRow, 2)} µs/row` : 'n/a'}${s.path === 'router' ? ', plus the derived value\'s subquery in the statement' : ''}`,
      });
    }
    for (const x of wa.bulk) {
      t.push({
        id: `3 ${x.change}`, what: `server-side cost per row of a 10k-row ${x.op} during dual-write (${x.change}; pgroll's measure)`,
        figure: `${fixed(x.dualWriteUsPerRow, 2)} vs ${fixed(x.beforeUsPerRow, 2)} µs/row = ${ratio(x.ratio)}`,
        target: '≤ 1.5×', pass: x.ratio <= 1.5,
        limit: x.ratio <= 1.5 ? '' : 'without the round trip that dilutes it in an application\'s single-row statements, the BEFORE row trigger\'s cost shows whole: a PL/pgSQL call, the expression evaluated again, and a copy of the new row, for every row',
      });
    }
  }
  const variant = (m: TrafficMethod) => (m === 'phaseflag-1' ? '1-worker (defaults)' : m === 'phaseflag-n' ? 'parallel' : 'gentle (20 ms batches, 20 ms pauses)');
  for (const run of (r.traffic ?? []).filter((x) => x.method !== 'single-update')) {
    for (const op of ['read', 'write'] as const) {
      const x = run.during[op].p99Ms / run.baseline[op].p99Ms;
      const waited = run.during.lockWait.statementsWaiting;
      const writes = run.during.write.ops;
      t.push({
        id: `4 ${run.change}`, what: `application ${op} p99 during the ${variant(run.method)} backfill (${run.change}, ${rowsLabel(run.rows)} rows)`,
        figure: `${ms(run.during[op].p99Ms)} vs ${ms(run.baseline[op].p99Ms)} without backfill = ${ratio(x)}`,
        target: '≤ 2× baseline', pass: x <= 2,
        limit: x <= 2 ? '' : op === 'write' && writes > 0 && waited / writes >= 0.005
          ? `row locks: a batch holds its rows until it commits, and ${int(waited)} of ${int(writes)} writes (${fixed((100 * waited) / writes, 1)}%) touched a row of the batch in flight and waited for it (longest ${ms(run.during.lockWait.longestMs)}), which puts the 99th percentile inside those waits; the share is about batch rows ÷ table rows, so it falls as the table grows or the batches shrink; plus CPU (p50 ${ms(run.baseline[op].p50Ms)} → ${ms(run.during[op].p50Ms)})`
          : `CPU: the backfill's backend, its VACUUMs and its Node process share the machine's ${r.machine.cores} cores with the application, so its statements wait to be scheduled (p50 ${ms(run.baseline[op].p50Ms)} → ${ms(run.during[op].p50Ms)}); batch.pauseMs leaves the application room`,
      });
    }
    const blocked = run.during.lockWait.longestMs;
    t.push({
      id: `4 ${run.change}`, what: `longest time an application statement waited on a lock, ${variant(run.method)} backfill (${run.change})`,
      figure: `${ms(blocked)} (${run.during.lockWait.statementsWaiting} statements waited; slowest write ${ms(run.during.write.maxMs)})`,
      target: '≤ 250 ms (one batch)', pass: blocked <= 250,
      limit: blocked <= 250 ? '' : 'a writer that touches a row of the batch in flight waits for that batch to commit',
    });
  }
  for (const run of (r.traffic ?? []).filter((x) => x.method === 'single-update')) {
    t.push({
      id: `4 ${run.change}`, what: `contrast: the single UPDATE blocks writers for its whole duration (${run.change})`,
      figure: `longest lock wait ${ms(run.during.lockWait.longestMs)} of a ${secs(run.backfillSeconds)} UPDATE; slowest write ${ms(run.during.write.maxMs)}`,
      target: 'baseline behaviour, not a phaseflag target', pass: null, limit: '', info: true,
    });
  }
  for (const e of r.expand ?? []) {
    if (e.variant === 'plain-alter') {
      t.push({
        id: '5', what: `plain ALTER TABLE ADD COLUMN while a transaction holds the table ${secs(e.holdMs / 1000)}: longest application stall`,
        figure: ms(e.longestStallMs), target: `≥ the full ${secs(e.holdMs / 1000)} (the hazard)`, pass: e.longestStallMs >= e.holdMs,
        limit: e.longestStallMs >= e.holdMs ? '' : 'no application statement queued behind the ALTER for the whole hold',
      });
    } else {
      const ok = e.lockTimeoutMs !== null && e.longestStallMs <= e.lockTimeoutMs;
      t.push({
        id: '5', what: `phaseflag expand behind the same transaction: longest application stall`,
        figure: `${ms(e.longestStallMs)} (${e.attempts} attempts, expand done after ${secs(e.ddlSeconds)})`,
        target: `≤ lock_timeout (${ms(e.lockTimeoutMs ?? NaN)})`, pass: ok,
        limit: ok ? '' : `the statement that queued right behind an attempt's LOCK TABLE waits out that attempt's whole lock_timeout, then still has to run and answer: ${ms(e.longestStallMs - (e.lockTimeoutMs ?? 0))} over, the server's timer and scheduling on a loaded machine; the queue itself never outlives lock_timeout`,
      });
    }
  }
  if (r.router) {
    const x = r.router.nsPerCall.router / r.router.nsPerCall.bare;
    t.push({
      id: '6', what: `router decision (decide + readColumn, flags in memory, ${r.router.sourceKind}) vs bare unleash-client isEnabled()`,
      figure: `${fixed(r.router.nsPerCall.router, 0)} ns vs ${fixed(r.router.nsPerCall.bare, 0)} ns = ${ratio(x)}`,
      target: '≤ 1.2×', pass: x <= 1.2,
      limit: x <= 1.2 ? '' : `the flag source alone costs ${fixed(r.router.nsPerCall.source, 0)} ns (freshness check and definition lookup before the client's isEnabled)`,
    });
    const g = r.router.heapGrowth.router;
    t.push({
      id: '6', what: `heap growth over ${int(r.router.heapCalls)} router decisions (heapUsed after full GC)`,
      figure: `${g >= 0 ? '+' : ''}${int(g)} bytes (bare client: ${int(r.router.heapGrowth.bare)})`,
      target: 'none (we count < 1 MiB as none)', pass: g < HEAP_GROWTH_LIMIT, limit: g < HEAP_GROWTH_LIMIT ? '' : 'something retains memory per call',
    });
  }
  if (b && r.sizes.length >= 2) {
    const big = r.sizes[r.sizes.length - 1]!;
    const small = r.sizes[r.sizes.length - 2]!;
    for (const change of changes) {
      const a = runOf(b, 'phaseflag-1', change, small);
      const z = runOf(b, 'phaseflag-1', change, big);
      if (!a?.peakRss || !z?.peakRss) continue;
      const x = z.peakRss / a.peakRss;
      t.push({
        id: `7 ${change}`, what: `peak RSS of the backfill process, ${rowsLabel(small)} vs ${rowsLabel(big)} rows (${change})${big < 10_000_000 ? '; 10M only with --rows 10000000' : ''}`,
        figure: `${mb(a.peakRss)} vs ${mb(z.peakRss)} = ${ratio(x)}`,
        target: 'within 10%', pass: Math.abs(x - 1) <= 0.1,
        limit: Math.abs(x - 1) <= 0.1 ? '' : `RSS before the backfill: ${mb(a.rssBefore ?? NaN)} and ${mb(z.rssBefore ?? NaN)}`,
      });
    }
  }
  const p = r.propagation;
  if (!p || !p.measured) {
    t.push({ id: '8', what: 'flag propagation: Admin API toggle → every instance applies it', figure: `not measured yet: ${p?.reason ?? 'case skipped'}`, target: 'none in issue 6', pass: null, limit: '' });
  } else {
    for (const s of p.series) {
      t.push({
        id: '8', what: `flag propagation to ${s.instances} instances, refresh every ${secs(s.refreshIntervalMs / 1000)}`,
        figure: `median ${ms(s.medianAllMs)}, worst ${ms(s.maxAllMs)} over ${s.toggles.length} toggles`,
        target: 'none in issue 6; expected ≤ refresh interval + ~1 s (the server\'s revision job)', pass: null, limit: '', info: true,
      });
    }
  }
  return t;
}

function backfillLimit(run: BackfillRun, single: BackfillRun, diag: BatchDiagnosis | undefined): string {
  const parts: string[] = [];
  if (diag) {
    const extra = diag.withTriggerMs / diag.withoutTriggerMs - 1;
    parts.push(`the sync trigger (dual-write) fires on the backfill's own UPDATE: EXPLAIN ANALYZE of one ${int(diag.rows)}-row batch takes ${ms(diag.withTriggerMs)} with it and ${ms(diag.withoutTriggerMs)} without (${signed(extra * 100)}%); the single UPDATE runs with no trigger`);
  }
  if (run.waits) parts.push(`waits: ${formatWaits(run.waits)}`);
  parts.push(`${run.batches ?? '?'} batches, each its own transaction (probe, UPDATE, checkpoint)`);
  const walRatio = run.wal.lsnBytes / single.wal.lsnBytes;
  if (Number.isFinite(walRatio) && walRatio > 1.1) parts.push(`WAL ${ratio(walRatio)} the single UPDATE's`);
  return parts.join('; ');
}

// ---- sections -----------------------------------------------------------------------------------------------

function machineSection(r: BenchResults): string {
  const m = r.machine;
  const s = r.postgres.settings;
  const load = (l: number[] | undefined) => (l ? l.map((x) => x.toFixed(2)).join(', ') : '—');
  return table(['fact', 'value'], [
    ['CPU', `${m.cores} × ${m.cpuModel}`],
    ['memory', mb(m.memoryBytes)],
    ['kernel, Node', `${m.kernel}, Node ${m.node}`],
    ['load average (1, 5, 15 min) at start / at end', `${load(m.loadAtStart)} / ${load(m.loadAtEnd)} (other engineers' suites share this machine)`],
    ['Postgres', `${r.postgres.version.split(' on ')[0]} (${r.databaseKind} server; the benchmark works in a database of its own, dropped at the end)`],
    ['shared_buffers, wal_level, synchronous_commit', `${s.shared_buffers}, ${s.wal_level}, ${s.synchronous_commit}`],
    ['max_wal_size, checkpoint_timeout', `${s.max_wal_size}, ${s.checkpoint_timeout}`],
    ['fsync, full_page_writes, wal_compression', `${s.fsync}, ${s.full_page_writes}, ${s.wal_compression}`],
    ['autovacuum, autovacuum_naptime', `${s.autovacuum}, ${s.autovacuum_naptime}`],
    ['work_mem, maintenance_work_mem', `${s.work_mem}, ${s.maintenance_work_mem}`],
    ['pg_stat_statements', r.postgres.pgStatStatements],
    ['table sizes; parallel workers', `${r.sizes.map(rowsLabel).join(', ')} rows; ${r.workers}`],
  ]);
}

const METHOD_LABEL: Record<Method | TrafficMethod, string> = {
  'single-update': 'one `UPDATE t SET new = expr`',
  'phaseflag-1': 'phaseflag, 1 worker (defaults)',
  'phaseflag-n': 'phaseflag, parallel workers',
  'phaseflag-gentle': `phaseflag, 1 worker, targetBatchMs ${GENTLE_BATCH.targetBatchMs}, pauseMs ${GENTLE_BATCH.pauseMs}`,
  'offset-loop': 'LIMIT/OFFSET loop (knex, 1000 rows)',
};

function backfillSection(r: BenchResults, b: BackfillCase): string {
  const out = ['## 1. Backfill throughput', ''];
  out.push('Each row is a fresh copy of the same table (built with `generate_series`, then `VACUUM ANALYZE`), after a `CHECKPOINT`. phaseflag runs in a child process (for case 7) with its default batch settings (5000 rows to start, adapted towards 100 ms per batch), in dual-write, so its sync trigger fires on every row it writes; the single UPDATE has no trigger. The LIMIT/OFFSET loop is the charitable version (one set-based UPDATE per batch of 1000, not a statement per row); it is quadratic, so it stops after ' + secs(r.offsetCapSeconds) + ' and the rest is extrapolated from a straight-line fit of batch time against offset.');
  out.push('');
  const rows: string[][] = [];
  for (const size of r.sizes) {
    for (const change of [...new Set(b.runs.map((x) => x.change))]) {
      const single = runOf(b, 'single-update', change, size);
      for (const method of ['single-update', 'phaseflag-1', 'phaseflag-n', 'offset-loop'] as const) {
        const run = runOf(b, method, change, size);
        if (!run) continue;
        const extrapolated = run.offset && !run.offset.completed
          ? ` (extrapolated: measured ${int(run.offset.rowsMeasured)} rows in ${secs(run.offset.secondsMeasured)})` : '';
        rows.push([
          rowsLabel(size), change, `${METHOD_LABEL[method]}${method === 'phaseflag-n' ? ` (${run.workers})` : ''}`,
          `${secs(run.seconds)}${extrapolated}`, int(run.rowsPerSecond), single ? ratio(run.rowsPerSecond / single.rowsPerSecond) : '—',
          run.batches !== undefined ? String(run.batches) : '—', run.correct ? 'yes' : '**NO**',
        ]);
      }
    }
  }
  out.push(table(['rows', 'change', 'method', 'time', 'rows/s', 'vs single UPDATE', 'batches', 'every row right'], rows));
  if (r.diagnosis?.length) {
    out.push('', '### Where a batch\'s time goes', '');
    out.push('One batch of the engine\'s UPDATE, on a table in dual-write, under `EXPLAIN (ANALYZE, BUFFERS, WAL)` inside a transaction that is rolled back; then the same rows with the triggers disabled (a diagnostic only).');
    out.push('');
    out.push(table(['change', 'rows', 'with sync trigger', 'of which in the trigger function', 'without trigger', 'trigger adds', 'WAL', 'buffers hit / read'],
      r.diagnosis.map((d) => [d.change, int(d.rows), ms(d.withTriggerMs), ms(d.triggerMs), ms(d.withoutTriggerMs), `${signed((d.withTriggerMs / d.withoutTriggerMs - 1) * 100)}%`, mb(d.walBytes), `${int(d.sharedHit)} / ${int(d.sharedRead)}`])));
    out.push('', 'The trigger function\'s own time undercounts the trigger: with a BEFORE ROW trigger the executor also materialises the old row and hands the function a copy of the new one for every row, which shows only in the difference between the two runs.');
  }
  const waitRows = b.runs.filter((x) => x.waits && x.rows === r.sizes[r.sizes.length - 1]).map((x) => [x.change, METHOD_LABEL[x.method], formatWaits(x.waits!, 6), String(x.waits!.samples)]);
  if (waitRows.length) {
    out.push('', '### Wait events of the backends doing the work (sampled every 50 ms, largest size)', '');
    out.push(table(['change', 'method', 'share of samples', 'samples'], waitRows));
    out.push('', '"CPU" is an active backend with no wait event. IO:WALSync/WALWrite is commit and WAL flushing, IO:DataFileExtend and Lock:extend growing the table, LWLock:WALInsert/WALWrite contention between backends writing WAL.');
  }
  return out.join('\n');
}

function leftBehindSection(r: BenchResults, b: BackfillCase): string {
  const out = ['## 2. What the backfill leaves behind', ''];
  out.push('Sizes right after the run; WAL is the `pg_current_wal_lsn()` difference over the run (cluster-wide, so other sessions\' WAL is included) and, for the single UPDATE, the statement\'s own WAL from `EXPLAIN (ANALYZE, WAL)`. n_dead_tup and the VACUUM and autovacuum columns are `pg_stat_user_tables` right after the run. phaseflag\'s backfill runs `VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED)` every 2.5% of the table while it works (packages/postgres/src/backfill/reclaim.ts) so later batches reuse the space earlier ones freed; "least possible" is a fresh copy of the same rows with the new column filled and a fresh primary key.');
  out.push('');
  const rows: string[][] = [];
  for (const size of r.sizes) {
    for (const run of b.runs.filter((x) => x.rows === size && x.method !== 'offset-loop')) {
      rows.push([
        rowsLabel(size), run.change, METHOD_LABEL[run.method],
        `${mb(run.before.total)} → ${mb(run.after.total)} (${ratio(run.after.total / run.before.total)})`,
        `${mb(run.before.heap)} → ${mb(run.after.heap)} (${ratio(run.after.heap / run.before.heap)})`,
        `${mb(run.before.indexes)} → ${mb(run.after.indexes)}`,
        `${mb(run.wal.lsnBytes)}${run.statementWalBytes !== undefined ? ` (statement: ${mb(run.statementWalBytes)})` : ''}`,
        int(run.activity.nDeadTup), String(run.vacuumsDuring), run.activity.lastAutovacuum ?? 'never',
      ]);
    }
  }
  if (r.postgres.settings.autovacuum === 'off') {
    out.push('**autovacuum is off on this server**, so no table here is ever vacuumed by it: the single UPDATE\'s dead tuples stay until someone runs VACUUM, while phaseflag\'s backfill leaves none behind whatever autovacuum does.', '');
  }
  out.push(table(['rows', 'change', 'method', 'total size', 'heap', 'indexes', 'WAL', 'n_dead_tup after', 'VACUUMs during the run', 'last_autovacuum'], rows));
  const floors = Object.entries(b.floors);
  if (floors.length) {
    out.push('');
    out.push(table(['change', 'least possible total (fresh copy)', 'least possible heap'], floors.map(([change, f]) => [
      change, `${mb(f!.total)} (${ratio(f!.total / f!.beforeTotal)} before)`, `${mb(f!.heap)} (${ratio(f!.heap / f!.beforeHeap)} before)`,
    ])));
  }
  return out.join('\n');
}

function writeSection(w: WriteAmplificationCase): string {
  const out = ['## 3. Write amplification during dual-write', ''];
  out.push(`Two identical ${rowsLabel(w.rows)}-row tables, one before expand and one in dual-write, written alternately in ${w.rounds} rounds of ${w.perRound} single-row statements per variant on one connection (random rows, the same ones for both); each figure is the median round's mean latency as the application sees it. "router" is the knex statement built with \`router.row(values)\` (both columns, the new one derived in SQL) against the plain values; "trigger" is the same plain SQL on both tables, the sync trigger filling the new column.`);
  out.push('');
  out.push(table(['change', 'statement', 'path', 'before expand', 'dual-write', 'ratio'], w.statements.map((s) => [s.change, s.op, s.path, `${fixed(s.beforeUs, 0)} µs`, `${fixed(s.dualWriteUs, 0)} µs`, ratio(s.ratio)])));
  out.push('', 'Server-side cost per row of the same writes 10k rows at a time (`EXPLAIN ANALYZE`, `TIMING OFF`, rolled back), where no round trip dilutes the trigger:', '');
  out.push(table(['change', 'statement', 'before expand', 'dual-write', 'ratio'], w.bulk.map((x) => [x.change, x.op, `${fixed(x.beforeUsPerRow, 2)} µs/row`, `${fixed(x.dualWriteUsPerRow, 2)} µs/row`, ratio(x.ratio)])));
  return out.join('\n');
}

function trafficSection(runs: TrafficRun[]): string {
  const out = ['## 4. Live traffic during each backfill', ''];
  out.push('One writer (`UPDATE … WHERE id = random`, plain SQL) and one reader (`SELECT * … WHERE id = random`), each pausing 2 ms between statements, first for a baseline window with no backfill on the same table in the same state, then while the backfill runs. Lock waits: application backends seen in `pg_stat_activity` with `wait_event_type = \'Lock\'`, sampled every 10 ms; each wait is bounded from above (it errs long by at most one sampling interval).');
  out.push('');
  const rows = runs.map((x) => [
    `${x.change}, ${rowsLabel(x.rows)}`, METHOD_LABEL[x.method], secs(x.backfillSeconds),
    `${ms(x.baseline.read.p50Ms)} / ${ms(x.baseline.read.p99Ms)} / ${ms(x.baseline.read.maxMs)}`,
    `${ms(x.during.read.p50Ms)} / ${ms(x.during.read.p99Ms)} / ${ms(x.during.read.maxMs)}`,
    `${ms(x.baseline.write.p50Ms)} / ${ms(x.baseline.write.p99Ms)} / ${ms(x.baseline.write.maxMs)}`,
    `${ms(x.during.write.p50Ms)} / ${ms(x.during.write.p99Ms)} / ${ms(x.during.write.maxMs)}`,
    `${ms(x.during.lockWait.longestMs)} (${x.during.lockWait.statementsWaiting} of ${int(x.during.write.ops)} writes)`,
    String(x.during.read.errors + x.during.write.errors),
  ]);
  out.push(table(['table', 'backfill', 'backfill time', 'read p50/p99/max, no backfill', 'read, during', 'write p50/p99/max, no backfill', 'write, during', 'longest lock wait (statements that waited)', 'errors'], rows));
  return out.join('\n');
}

function expandSection(runs: ExpandRun[]): string {
  const out = ['## 5. Expand behind a long transaction', ''];
  out.push('A session opens a transaction and reads the table (ACCESS SHARE, held until it commits); two application loops keep reading and writing random rows (5 ms pause); then the DDL starts, and the long transaction commits a fixed time after the first application statement is seen queued behind the DDL. A plain ALTER queues for ACCESS EXCLUSIVE and every application statement queues behind it; phaseflag\'s expand gives up after lock_timeout, lets the queue drain, backs off and retries.');
  out.push('');
  out.push(table(['DDL', 'lock held after the first statement queued', 'lock_timeout', 'longest application stall', 'longest lock wait', 'DDL done after', 'attempts', 'application statements (errors)'], runs.map((e) => [
    e.variant === 'plain-alter' ? '`ALTER TABLE … ADD COLUMN`' : 'phaseflag expand()', secs(e.holdMs / 1000), e.lockTimeoutMs === null ? 'none' : ms(e.lockTimeoutMs),
    ms(e.longestStallMs), ms(e.lockWait.longestMs), secs(e.ddlSeconds), e.attempts === null ? '1' : String(e.attempts), `${int(e.appOps)} (${e.appErrors})`,
  ])));
  return out.join('\n');
}

function routerSection(x: RouterOverhead): string {
  const out = ['## 6. Router overhead', ''];
  out.push(`In a child process started with \`--expose-gc\`: the read-new flag bootstrapped into an unleash-client (no server, \`refreshInterval: 0\`, \`disableMetrics\`), the same flag and context for every variant, alternating rounds, median round. "source" is the flag through ${x.sourceKind}; "router" is the core Router in phase read-new over that source, \`readColumn(context)\` (decide + the read counter heartbeats report).`);
  out.push('');
  out.push(table(['variant', 'ns per call', 'vs bare'], [
    ['bare `unleash.isEnabled(flag, context)`', fixed(x.nsPerCall.bare, 0), '1.00×'],
    [`${x.sourceKind}.isEnabled`, fixed(x.nsPerCall.source, 0), ratio(x.nsPerCall.source / x.nsPerCall.bare)],
    ['router `readColumn(context)`', fixed(x.nsPerCall.router, 0), ratio(x.nsPerCall.router / x.nsPerCall.bare)],
  ]));
  out.push('', `Heap after a full GC, before and after ${int(x.heapCalls)} calls: router ${int(x.heapGrowth.router)} bytes, bare client ${int(x.heapGrowth.bare)} bytes.`);
  return out.join('\n');
}

function memorySection(r: BenchResults, b: BackfillCase): string {
  const out = ['## 7. Memory of the backfill', ''];
  out.push('Peak RSS (`VmHWM` from /proc/self/status) of the child process that ran the 1-worker backfill, which holds only the current checkpoint whatever the table\'s size. The 10M-row figure needs `--rows 10000000`; the default run compares its two largest sizes.');
  out.push('');
  const rows = b.runs.filter((x) => x.method !== 'single-update' && x.method !== 'offset-loop' && x.peakRss).map((x) => [
    rowsLabel(x.rows), x.change, METHOD_LABEL[x.method], mb(x.rssBefore ?? NaN), mb(x.peakRss!), mb(x.peakRss! - (x.rssBefore ?? NaN)),
  ]);
  out.push(table(['rows', 'change', 'method', 'RSS before the backfill', 'peak RSS', 'peak minus RSS before'], rows));
  void r;
  return out.join('\n');
}

function propagationSection(p: PropagationCase | undefined): string {
  const out = ['## 8. Flag propagation', ''];
  if (!p || !p.measured) {
    out.push(`Not measured yet: ${p?.reason ?? 'the case was skipped'}.`);
    return out.join('\n');
  }
  out.push(`A real unleash-server (testkit \`startUnleash()\`, started in ${ms(p.serverStartMs ?? NaN)}) and in-process service instances, each an unleash-client with its own polling, an UnleashFlagSource and a Router in phase read-new. Each toggle goes through the Admin API after a random pause (so it lands anywhere in the instances' polling cycle); the figure is the time from sending it until the last instance's router reads the other column.${p.reason ? ` Note: ${p.reason}.` : ''}`);
  out.push('');
  out.push(table(['refresh interval', 'instances', 'toggles', 'first instance (median)', 'every instance: median', 'every instance: worst', 'each toggle (ms)'], p.series.map((s) => [
    secs(s.refreshIntervalMs / 1000), String(s.instances), String(s.toggles.length),
    ms(median(s.toggles.map((x) => x.firstMs))), ms(s.medianAllMs), ms(s.maxAllMs), s.toggles.map((x) => `${x.to} ${Math.round(x.allMs)}`).join(', '),
  ])));
  return out.join('\n');
}

function signed(n: number): string {
  return `${n >= 0 ? '+' : ''}${fixed(n, 0)}`;
}

function methodSection(r: BenchResults): string {
  return [
    '## How to read and rerun',
    '',
    `- \`npm run bench\` (100k and 1M rows, about 10 minutes), \`npm run bench -- --rows 10000000\` (adds 10M), \`npm run bench -- --quick\` (a smoke run in well under a minute; the integration suite runs it in test/bench-quick.test.ts and writes its results to a temporary file). \`--only 1,3\` runs some cases, \`--workers N\` sets the parallel workers (default ${r.workers}), \`--json FILE\` keeps the raw figures.`,
    '- Every ratio compares runs made one after the other in the same process on identical fresh tables, so a noisy neighbour moves both sides; the load average above says how noisy the machine was.',
    '- A missed target stays in the table, with what limits it; targets are never loosened to turn a row green.',
  ].join('\n');
}
