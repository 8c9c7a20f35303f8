import type { Migration } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { Option, type Command } from 'commander';
import knexFactory, { type Knex } from 'knex';
import { changedFiles } from '../check/changed-files.js';
import { checkAnnotations, checkJson, printCheck, verdict, type CheckReport } from '../check/check-report.js';
import { planAll } from '../check/plan-all.js';
import { openScratchDatabase, type ScratchDatabase } from '../check/scratch-database.js';
import { CliError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { Reporter } from '../lint-report.js';
import { loadLintConfig, runLint } from '../lint-run.js';
import { action } from '../program.js';
import { knexLog } from '../runtime.js';

const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name]);

export function registerCheck(program: Command): void {
  program
    .command('check')
    .argument('[paths...]', 'migration files and directories to lint (.sql, knex migrations)')
    .description(
      'one command for a pull request: lint the migration files, plan every declared migration, report drift; one exit code',
    )
    .option('--since <ref>', 'lint only the files under [paths...] changed since this git ref (e.g. origin/main)')
    .option(
      '--schema <path>',
      'with no database given: build one on an embedded PostgreSQL from a schema file (pg_dump -s), a directory of .sql migrations or of knex migrations, and plan there',
    )
    .addOption(
      new Option('--reporter <name>', 'text, json (as --json) or github (annotations)').choices([
        'text',
        'json',
        'github',
      ]),
    )
    .addHelpText(
      'after',
      `
Lints the files (every rule of \`phaseflag lint\`, the config's lint section; with a real database, its catalog's
table sizes), plans every migration of the config on the database (read-only: nothing is installed, registered or
changed; a contracted one is skipped) and compares the database with what each migration's phase implies (drift;
only on a real database, not on one built from --schema). Without a config file it only lints.

Exit codes: 0 all clear (lint warnings allowed); 1 a lint error, a migration the database refuses, or drift;
2 bad input (a file that does not parse, an unknown rule, a schema that does not build, no database to plan on);
5 Postgres unreachable.

Examples:
  npx phaseflag check migrations/ --since origin/main --reporter github   # in a pull request
  npx phaseflag check migrations/ --schema db/schema.sql --json           # no database: an embedded one
  DATABASE_URL=postgres://… npx phaseflag check migrations/               # against staging`,
    )
    .action(
      action(async (out, opts, paths: string[]) => {
        const reporter: Reporter = opts.json ? 'json' : ((opts.reporter as Reporter | undefined) ?? 'text');
        const config = await loadLintConfig(opts.config);
        const migrations: readonly Migration[] = config?.migrations ?? [];
        const since = opts.since as string | undefined;
        const files = since ? await changedFiles(since, paths) : paths;
        const url = opts.databaseUrl ?? env('DATABASE_URL') ?? config?.database.url;
        const schema = opts.schema as string | undefined;
        if (!url && !schema && migrations.length > 0) {
          throw new CliError(
            'PF_USAGE_NO_DATABASE',
            `No database to plan the ${migrations.length} declared migration(s) on.`,
            'Pass --database-url (or set DATABASE_URL), or --schema <schema.sql | migrations dir> to build one on an embedded PostgreSQL.',
          );
        }
        let scratch: ScratchDatabase | undefined;
        let knex: Knex | undefined;
        let pf: Phaseflag | undefined;
        try {
          if (!url && schema) scratch = await openScratchDatabase(schema);
          const target = url ?? scratch?.url;
          if (target) {
            knex = knexFactory({
              client: 'pg',
              connection: {
                connectionString: target,
                connectionTimeoutMillis: 10_000,
                application_name: 'phaseflag-check',
              },
              pool: { min: 0, max: 4 },
              log: knexLog(out),
            });
            const stateSchema = opts.stateSchema ?? config?.database.stateSchema;
            pf = new Phaseflag({ knex, ...(stateSchema ? { stateSchema } : {}) });
          }
          const report: CheckReport = {
            files,
            database: url ? 'given' : scratch ? `embedded, built from ${scratch.builtFrom}` : 'none',
            configFile: config?.file ?? null,
            // Table sizes judge lint's findings only on a real database: one built from a schema is empty.
            lint: await runLint({ paths: files, config: config?.lint ?? {}, ...(url && knex ? { knex } : {}) }),
            plans: pf ? await planAll(pf, migrations) : [],
            drift: pf && url && migrations.length > 0 ? await pf.drift(migrations) : null,
          };
          if (reporter === 'json') process.stdout.write(`${JSON.stringify(checkJson(report), null, 2)}\n`);
          else if (reporter === 'github')
            for (const line of checkAnnotations(report)) process.stdout.write(`${line}\n`);
          else printCheck(out, report);
          return verdict(report).ok ? EXIT.ok : EXIT.checkFailed;
        } finally {
          await pf?.close().catch(() => undefined);
          await knex?.destroy().catch(() => undefined);
          await scratch?.close();
        }
      }),
    );
}
