/** The sections of RESULTS.md after the targets table: each case's figures in full, and how they were measured. */
import type { BackfillCase, Method } from '../cases/backfill.js';
import type { ExpandRun } from '../cases/expand-lock.js';
import type { PropagationCase } from '../cases/propagation.js';
import type { RouterOverhead } from '../cases/router-overhead.js';
import { GENTLE_BATCH, type TrafficMethod, type TrafficRun } from '../cases/traffic.js';
import type { WriteAmplificationCase } from '../cases/write-amplification.js';
import { fixed, int, mb, ms, ratio, rowsLabel, secs, signed, table } from '../lib/format.js';
import { formatWaits } from '../lib/pg-stats.js';
import { median } from '../lib/stats.js';

import type { BenchResults } from './results.js';
import { runOf } from './targets.js';

export function machineSection(r: BenchResults): string {
  const m = r.machine;
  const s = r.postgres.settings;
  const load = (l: number[] | undefined) => (l ? l.map((x) => x.toFixed(2)).join(', ') : '—');
  return table(
    ['fact', 'value'],
    [
      ['CPU', `${m.cores} × ${m.cpuModel}`],
      ['memory', mb(m.memoryBytes)],
      ['kernel, Node', `${m.kernel}, Node ${m.node}`],
      [
        'load average (1, 5, 15 min) at start / at end',
        `${load(m.loadAtStart)} / ${load(m.loadAtEnd)} (other engineers' suites share this machine)`,
      ],
      [
        'Postgres',
        `${r.postgres.version.split(' on ')[0]} (${r.databaseKind} server; the benchmark works in a database of its own, dropped at the end)`,
      ],
      [
        'shared_buffers, wal_buffers, wal_level, synchronous_commit',
        `${s.shared_buffers}, ${s.wal_buffers ?? '—'}, ${s.wal_level}, ${s.synchronous_commit}`,
      ],
      ['max_wal_size, checkpoint_timeout', `${s.max_wal_size}, ${s.checkpoint_timeout}`],
      ['fsync, full_page_writes, wal_compression', `${s.fsync}, ${s.full_page_writes}, ${s.wal_compression}`],
      ['autovacuum, autovacuum_naptime', `${s.autovacuum}, ${s.autovacuum_naptime}`],
      ['work_mem, maintenance_work_mem', `${s.work_mem}, ${s.maintenance_work_mem}`],
      ['pg_stat_statements', r.postgres.pgStatStatements],
      ['table sizes; parallel workers', `${r.sizes.map(rowsLabel).join(', ')} rows; ${r.workers}`],
    ],
  );
}

export const METHOD_LABEL: Record<Method | TrafficMethod, string> = {
  'single-update': 'one `UPDATE t SET new = expr`',
  'phaseflag-1': 'phaseflag, 1 worker (defaults)',
  'phaseflag-n': 'phaseflag, parallel workers',
  'phaseflag-gentle': `phaseflag, 1 worker, targetBatchMs ${GENTLE_BATCH.targetBatchMs}, pauseMs ${GENTLE_BATCH.pauseMs}`,
  'offset-loop': 'LIMIT/OFFSET loop (knex, 1000 rows)',
};

export function backfillSection(r: BenchResults, b: BackfillCase): string {
  const out = ['## 1. Backfill throughput', ''];
  out.push(
    "Each row is a fresh copy of the same table (built with `generate_series`, then `VACUUM ANALYZE`), after a `CHECKPOINT`. phaseflag runs in a child process (for case 7) with its default batch settings (5000 rows to start, adapted towards 100 ms per batch), in dual-write: its batches skip the migration's own sync trigger when nothing else on the table needs triggers to fire (they do here: see the column) and fire them otherwise; the single UPDATE has no trigger. The LIMIT/OFFSET loop is the charitable version (one set-based UPDATE per batch of 1000, not a statement per row); it is quadratic, so it stops after " +
      secs(r.offsetCapSeconds) +
      ' and the rest is extrapolated from a straight-line fit of batch time against offset.',
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
        'every row right',
      ],
      rows,
    ),
  );
  if (r.diagnosis?.length) {
    out.push('', "### Where a batch's time goes", '');
    out.push(
      "One batch of the engine's UPDATE, on a table in dual-write, under `EXPLAIN (ANALYZE, BUFFERS, WAL)` inside a transaction that is rolled back; then the same rows with the triggers disabled (a diagnostic only).",
    );
    out.push('');
    out.push(
      table(
        [
          'change',
          'rows',
          'with sync trigger',
          'of which in the trigger function',
          'without trigger',
          'trigger adds',
          'WAL',
          'buffers hit / read',
        ],
        r.diagnosis.map((d) => [
          d.change,
          int(d.rows),
          ms(d.withTriggerMs),
          ms(d.triggerMs),
          ms(d.withoutTriggerMs),
          `${signed((d.withTriggerMs / d.withoutTriggerMs - 1) * 100)}%`,
          mb(d.walBytes),
          `${int(d.sharedHit)} / ${int(d.sharedRead)}`,
        ]),
      ),
    );
    out.push(
      '',
      'The trigger function\'s own time undercounts the trigger: with a BEFORE ROW trigger the executor also fetches the old row for it and hands it a copy of the new one, for every row, which shows only in the difference between the two runs. This is why the backfill now skips the sync trigger on its own rows when nothing else on the table needs triggers to fire (the "batches without triggers" column above), and fires them as usual otherwise.',
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
    "Sizes right after the run; WAL is the `pg_current_wal_lsn()` difference over the run (cluster-wide, so other sessions' WAL is included) and, for the single UPDATE, the statement's own WAL from `EXPLAIN (ANALYZE, WAL)`. n_dead_tup and the VACUUM and autovacuum columns are `pg_stat_user_tables` right after the run. phaseflag's backfill runs `VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED)` every 2.5% of the table while it works (packages/postgres/src/backfill/reclaim.ts) so later batches reuse the space earlier ones freed; \"least possible\" is a fresh copy of the same rows with the new column filled and a fresh primary key.",
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
      ],
      rows,
    ),
  );
  const floors = Object.entries(b.floors);
  if (floors.length) {
    out.push('');
    out.push(
      table(
        ['change', 'least possible total (fresh copy)', 'least possible heap'],
        floors.map(([change, f]) => [
          change,
          `${mb(f.total)} (${ratio(f.total / f.beforeTotal)} before)`,
          `${mb(f.heap)} (${ratio(f.heap / f.beforeHeap)} before)`,
        ]),
      ),
    );
  }
  return out.join('\n');
}

export function writeSection(w: WriteAmplificationCase): string {
  const out = ['## 3. Write amplification during dual-write', ''];
  out.push(
    `Two identical ${rowsLabel(w.rows)}-row tables, one before expand and one in dual-write, written alternately in ${w.rounds} rounds of ${w.perRound} single-row statements per variant on one connection (random rows, the same ones for both); each figure is the median round's mean latency as the application sees it. "router" is the knex statement built with \`router.row(values)\` (while the sync trigger is live it leaves the derived column to the trigger, which records a value it cannot derive instead of failing the write) against the plain values; "trigger" is the same plain SQL on both tables, the sync trigger filling the new column.`,
  );
  out.push('');
  out.push(
    table(
      ['change', 'statement', 'path', 'before expand', 'dual-write', 'ratio'],
      w.statements.map((s) => [
        s.change,
        s.op,
        s.path,
        `${fixed(s.beforeUs, 0)} µs`,
        `${fixed(s.dualWriteUs, 0)} µs`,
        ratio(s.ratio),
      ]),
    ),
  );
  out.push(
    '',
    'Server-side cost per row of the same writes 10k rows at a time (`EXPLAIN ANALYZE`, `TIMING OFF`, rolled back), where no round trip dilutes the trigger:',
    '',
  );
  out.push(
    table(
      [
        'change',
        'statement',
        'before expand (no trigger)',
        'dual-write',
        'ratio',
        'trigger without exception blocks',
        'exception blocks cost',
      ],
      w.bulk.map((x) => [
        x.change,
        x.op,
        `${fixed(x.beforeUsPerRow, 2)} µs/row`,
        `${fixed(x.dualWriteUsPerRow, 2)} µs/row`,
        ratio(x.ratio),
        x.unguardedUsPerRow === undefined ? 'n/a' : `${fixed(x.unguardedUsPerRow, 2)} µs/row`,
        x.unguardedUsPerRow === undefined ? 'n/a' : `${fixed(x.dualWriteUsPerRow - x.unguardedUsPerRow, 2)} µs/row`,
      ]),
    ),
  );
  out.push(
    '',
    "The sync trigger derives each value inside a PL/pgSQL exception block (a subtransaction) so that a row the expression cannot derive is recorded instead of failing the application's write; the last two columns are the same trigger without those blocks, and the difference per row.",
  );
  if (w.loop?.length) {
    out.push(
      '',
      `Single-row UPDATEs one after the other in a server-side loop (${int(w.loop[0]!.statements)} statements in one \`DO\` block, rolled back): each statement's cost without the round trip, on an UPDATE of the old column and on one of \`note\`, which neither expression reads (the trigger fires on every UPDATE of the table):`,
      '',
    );
    out.push(
      table(
        ['change', 'UPDATE of', 'before expand (no trigger)', 'dual-write', 'ratio'],
        w.loop.map((x) => [
          x.change,
          x.column === 'old' ? 'the old column' : 'an unrelated column',
          `${fixed(x.beforeUs, 1)} µs`,
          `${fixed(x.dualWriteUs, 1)} µs`,
          ratio(x.ratio),
        ]),
      ),
    );
  }
  return out.join('\n');
}

export function trafficSection(runs: TrafficRun[]): string {
  const out = ['## 4. Live traffic during each backfill', ''];
  out.push(
    "One writer (`UPDATE … WHERE id = random`, plain SQL) and one reader (`SELECT * … WHERE id = random`), each pausing 2 ms between statements, first for a baseline window with no backfill on the same table in the same state, then while the backfill runs. Lock waits: application backends seen in `pg_stat_activity` with `wait_event_type = 'Lock'`, sampled every 10 ms; each wait is bounded from above (it errs long by at most one sampling interval).",
  );
  out.push('');
  const rows = runs.map((x) => [
    `${x.change}, ${rowsLabel(x.rows)}`,
    METHOD_LABEL[x.method],
    secs(x.backfillSeconds),
    `${ms(x.baseline.read.p50Ms)} / ${ms(x.baseline.read.p99Ms)} / ${ms(x.baseline.read.maxMs)}`,
    `${ms(x.during.read.p50Ms)} / ${ms(x.during.read.p99Ms)} / ${ms(x.during.read.maxMs)}`,
    `${ms(x.baseline.write.p50Ms)} / ${ms(x.baseline.write.p99Ms)} / ${ms(x.baseline.write.maxMs)}`,
    `${ms(x.during.write.p50Ms)} / ${ms(x.during.write.p99Ms)} / ${ms(x.during.write.maxMs)}`,
    `${ms(x.during.lockWait.longestMs)} (${x.during.lockWait.statementsWaiting} of ${int(x.during.write.ops)} writes)`,
    String(x.during.read.errors + x.during.write.errors),
  ]);
  out.push(
    table(
      [
        'table',
        'backfill',
        'backfill time',
        'read p50/p99/max, no backfill',
        'read, during',
        'write p50/p99/max, no backfill',
        'write, during',
        'longest lock wait (statements that waited)',
        'errors',
      ],
      rows,
    ),
  );
  return out.join('\n');
}

export function expandSection(runs: ExpandRun[]): string {
  const out = ['## 5. Expand behind a long transaction', ''];
  out.push(
    "A session opens a transaction and reads the table (ACCESS SHARE, held until it commits); two application loops keep reading and writing random rows (5 ms pause); then the DDL starts, and the long transaction commits a fixed time after the first application statement is seen queued behind the DDL. A plain ALTER queues for ACCESS EXCLUSIVE and every application statement queues behind it; phaseflag's expand gives up after lock_timeout, lets the queue drain, backs off and retries.",
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

export function routerSection(x: RouterOverhead): string {
  const out = ['## 6. Router overhead', ''];
  out.push(
    `In a child process started with \`--expose-gc\`: the read-new flag bootstrapped into an unleash-client (no server, \`refreshInterval: 0\`, \`disableMetrics\`), the same flag and context for every variant, alternating rounds, median round. "source" is the flag through ${x.sourceKind}; "router" is the core Router in phase read-new over that source, \`readColumn(context)\` (decide + the read counter heartbeats report).`,
  );
  out.push('');
  out.push(
    table(
      ['variant', 'ns per call', 'vs bare'],
      [
        ['bare `unleash.isEnabled(flag, context)`', fixed(x.nsPerCall.bare, 0), '1.00×'],
        [`${x.sourceKind}.isEnabled`, fixed(x.nsPerCall.source, 0), ratio(x.nsPerCall.source / x.nsPerCall.bare)],
        ['router `readColumn(context)`', fixed(x.nsPerCall.router, 0), ratio(x.nsPerCall.router / x.nsPerCall.bare)],
      ],
    ),
  );
  out.push(
    '',
    `Heap after a full GC, before and after ${int(x.heapCalls)} calls: router ${int(x.heapGrowth.router)} bytes, bare client ${int(x.heapGrowth.bare)} bytes.`,
  );
  return out.join('\n');
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
    ]);
  out.push(table(['rows', 'change', 'method', 'RSS before the backfill', 'peak RSS', 'peak minus RSS before'], rows));
  void r;
  return out.join('\n');
}

export function propagationSection(p: PropagationCase | undefined): string {
  const out = ['## 8. Flag propagation', ''];
  if (!p || !p.measured) {
    out.push(`Not measured yet: ${p?.reason ?? 'the case was skipped'}.`);
    return out.join('\n');
  }
  out.push(
    `A real unleash-server (testkit \`startUnleash()\`, started in ${ms(p.serverStartMs ?? NaN)}) and in-process service instances, each an unleash-client with its own polling, an UnleashFlagSource and a Router in phase read-new. Each toggle goes through the Admin API after a random pause (so it lands anywhere in the instances' polling cycle); the figure is the time from sending it until the last instance's router reads the other column.${p.reason ? ` Note: ${p.reason}.` : ''}`,
  );
  out.push('');
  out.push(
    table(
      [
        'refresh interval',
        'instances',
        'toggles',
        'first instance (median)',
        'every instance: median',
        'every instance: worst',
        'each toggle (ms)',
      ],
      p.series.map((s) => [
        secs(s.refreshIntervalMs / 1000),
        String(s.instances),
        String(s.toggles.length),
        ms(median(s.toggles.map((x) => x.firstMs))),
        ms(s.medianAllMs),
        ms(s.maxAllMs),
        s.toggles.map((x) => `${x.to} ${Math.round(x.allMs)}`).join(', '),
      ]),
    ),
  );
  return out.join('\n');
}

export function methodSection(r: BenchResults): string {
  return [
    '## How to read and rerun',
    '',
    `- \`npm run bench\` (100k and 1M rows, about 6 minutes on this machine), \`npm run bench -- --rows 10000000\` (adds 10M: about 11 minutes), \`npm run bench -- --quick\` (a smoke run in well under a minute, whose results go to a temporary file unless \`--out\` says otherwise; the integration suite runs it in test/bench-quick.test.ts). \`--only 1,3\` runs some cases, \`--workers N\` sets the parallel workers (default ${r.workers}), \`--json FILE\` keeps the raw figures and \`--render FILE\` rewrites the report from them without measuring again.`,
    '- Every ratio compares runs made one after the other in the same process on identical fresh tables, so a noisy neighbour moves both sides; the load average above says how noisy the machine was.',
    '- A missed target stays in the table, with what limits it; targets are never loosened to turn a row green.',
  ].join('\n');
}
