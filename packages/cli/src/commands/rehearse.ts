import type { Command } from 'commander';
import { findMigration, loadConfig } from '../config.js';
import { EXIT } from '../exit-codes.js';
import { action } from '../program.js';
import { rehearseOptions } from '../rehearse/options.js';
import { buildReport } from '../rehearse/report.js';
import { printRehearsal } from '../rehearse/report-view.js';
import { rehearse } from '../rehearse/run.js';
import { databaseSettings } from '../runtime.js';

export function registerRehearse(program: Command): void {
  program
    .command('rehearse')
    .argument('<id>', 'migration id (from the config)')
    .description(
      'copy the table (read-only) from --database-url into an embedded PostgreSQL and run the whole migration there under synthetic traffic: locks, latency, backfill rate, projected backfill time',
    )
    .option('--sample <n>', 'rows to read from the source (TABLESAMPLE BERNOULLI; default 10000, at most --rows)')
    .option('--rows <m>', "rows of the copy, the sample scaled up (default: the source's estimate, capped)")
    .option('--max-rows <n>', 'cap of the default --rows (default 1000000; free disk caps it too)')
    .option('--reads-per-s <n>', "the synthetic application's reads per second (default: the source's, measured)")
    .option('--writes-per-s <n>', "the synthetic application's writes per second (default: the source's, measured)")
    .option('--stats-window-s <n>', 'how long to watch pg_stat_user_tables on the source for the rates (default 5)')
    .option('--baseline-s <n>', 'traffic with no migration step, for the baseline latency (default 5)')
    .option('--phase-min-s <n>', 'each phase window lasts at least this long, so its latency has samples (default 2)')
    .option('--drop-old-column', 'contract drops the old column')
    .option('--max-lock-ms <n>', 'fail when a statement holds (or waits for) a lock that blocks writes longer')
    .option('--max-backfill <duration>', 'fail when the projected backfill at the source size is longer (90s, 30m, 2h)')
    .option('--max-p99-ratio <x>', "fail when a phase's p99 latency exceeds the baseline's by more than this factor")
    .addHelpText(
      'after',
      `
--database-url is the SOURCE: it is only read (every transaction READ ONLY; a role with SELECT and USAGE is
enough). The copy lives in an embedded PostgreSQL (@phaseflag/local) removed at the end.

Exit codes: 0 passed; 1 a threshold was crossed, or a phase failed on the copy (the preflight found rows the
expression cannot derive, a guard refused, verify found differences); 2 bad input (unknown id, no such table,
a bad option value); 5 the source unreachable.

Examples:
  npx phaseflag rehearse orders-amount --database-url postgres://readonly@replica/app
  npx phaseflag rehearse orders-amount --sample 20000 --rows 200000 --max-lock-ms 200 --max-backfill 2h --max-p99-ratio 3 --json`,
    )
    .action(
      action(async (out, opts, id: string) => {
        const options = rehearseOptions(opts);
        const config = await loadConfig(opts.config);
        const migration = findMigration(config, id);
        const { url } = databaseSettings(opts, config);
        const run = await rehearse(out, url, migration, options);
        const report = buildReport(run, options);
        if (opts.json) out.result(report);
        else printRehearsal(out, report);
        return report.ok ? EXIT.ok : EXIT.rehearseFailed;
      }),
    );
}
