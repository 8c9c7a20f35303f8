/** The sections of RESULTS.md about the run itself: the machine it ran on, and how to read and rerun it. */
import { mb, rowsLabel, table } from '../../lib/format.js';

import type { BenchResults } from '../results.js';

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

export function methodSection(r: BenchResults): string {
  return [
    '## How to read and rerun',
    '',
    `- \`npm run bench\` (100k and 1M rows, about 6 minutes on this machine, plus about 4 for the fleet of case 9 and 4 for the peers of case 11), \`npm run bench -- --rows 10000000\` (adds 10M: about 11 minutes), \`npm run bench -- --quick\` (a smoke run of about a minute, whose results go to a temporary file unless \`--out\` says otherwise; the integration suite runs it in test/bench-quick.test.ts). \`--only 1,3\` runs some cases (\`--only 9 --out FILE\`: the fleet alone), \`--workers N\` sets the parallel workers (default ${r.workers}), \`--json FILE\` keeps the raw figures and \`--render FILE\` rewrites the report from them without measuring again.`,
    '- Every ratio compares runs made one after the other in the same process on identical fresh tables, so a noisy neighbour moves both sides; the load average above says how noisy the machine was.',
    '- A missed target stays in the table, with what limits it; targets are never loosened to turn a row green.',
  ].join('\n');
}
