import type { Command } from 'commander';
import { driftJson, renderDrift } from '../drift-view.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import { findMigration } from '../config.js';
import { action } from '../program.js';
import { openSession } from '../runtime.js';

export function registerDrift(program: Command): void {
  program
    .command('drift')
    .argument('[id]', 'one migration (default: every migration in the config)')
    .description(
      "the live catalog against what each migration's phase implies: each difference, what was expected, what is there and how to repair it; DDL phaseflag did not run on the tables (read-only)",
    )
    .option('--ack', 'acknowledge the recorded DDL on these tables (it is no longer reported), then report')
    .addHelpText(
      'after',
      `
Compares the new column (type, nullability, default), its index (valid, unique, columns), its check (validated),
its foreign key, the sync trigger (present, enabled, its function's body as phaseflag writes it), the old column
(there until contract drops it) and the state store's version. DDL on a migration's table that phaseflag did not
run is recorded as it happens where the state store was installed by a superuser (event triggers), and listed
until acknowledged with --ack.

Exit codes: 0 the catalog matches, 1 drift found (a difference, or recorded DDL not acknowledged), 2 bad input
(unknown id), 5 Postgres unreachable. A controller refuses to advance a drifted migration (PF_DRIFT).

Examples:
  npx phaseflag drift                          # every migration in the config
  npx phaseflag drift orders-amount --json     # one document on stdout, for CI
  npx phaseflag drift orders-amount --ack      # seen the recorded ALTER TABLE: stop reporting it`,
    )
    .action(
      action(async (out, opts, id: string | undefined) => {
        // Read-only but for --ack (which marks log rows): no install, no registration.
        const session = await openSession(opts, out, { install: false });
        try {
          const migrations = id ? [findMigration(session.config, id)] : session.config.migrations;
          const acknowledged = opts.ack ? await session.pf.acknowledgeDdl(migrations) : null;
          if (acknowledged !== null) out.note(`acknowledged ${acknowledged} recorded DDL statement(s)`);
          const report = await session.pf.drift(migrations);
          renderDrift(out, report);
          out.result({
            ...report,
            migrations: report.migrations.map((r) => ({
              migrationId: r.migrationId,
              phase: r.phase,
              table: r.table,
              ...driftJson(r),
            })),
            acknowledged,
            code: report.drifted ? 'PF_DRIFT' : null,
          });
          return report.drifted ? exitCodeFor('PF_DRIFT') : EXIT.ok;
        } finally {
          await session.close();
        }
      }),
    );
}
