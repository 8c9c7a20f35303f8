import type { Migration } from '@phaseflag/core';
import { RULES } from '@phaseflag/lint';
import type { MigrationHandle } from '@phaseflag/postgres';
import { Option, type Command } from 'commander';
import knexFactory, { type Knex } from 'knex';
import { CliError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { githubAnnotation, jsonReport, printText, type Reporter } from '../lint-report.js';
import { loadLintConfig, runLint } from '../lint-run.js';
import { action, integerOption } from '../program.js';
import { knexLog, openSession, type Session } from '../runtime.js';

const list = (value: unknown): string[] =>
  value === undefined
    ? []
    : String(value)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

export function registerLint(program: Command): void {
  program
    .command('lint')
    .argument('[paths...]', '.sql files, knex migration files (.js .mjs .cjs .ts) and directories of them')
    .description(
      'find unsafe DDL (locks that block reads or writes, rewrites, breaking renames) with the PostgreSQL parser; nothing is run',
    )
    .addOption(
      new Option('--reporter <name>', 'text, json (as --json) or github (annotations)').choices([
        'text',
        'json',
        'github',
      ]),
    )
    .option('--exclude <rules>', "rules to leave out, comma-separated (adds to the config's lint.exclude)")
    .option('--rule <rules>', 'only these rules, comma-separated')
    .option(
      '--assume-in-transaction',
      'plain .sql files run inside one transaction (knex migrations say it themselves)',
    )
    .option(
      '--pg-version <major>',
      'the PostgreSQL major version the SQL runs on (default 17; --database-url reads it)',
    )
    .option('--migrations', "also lint the plans of the config's declared migrations (needs a database)")
    .option('--list-rules', 'print the rules and exit')
    .addHelpText(
      'after',
      [
        '',
        'With --database-url (or DATABASE_URL, or database.url in the config) lint reads the catalog: a blocking',
        'statement on a small table (< 10,000 rows and < 10 MB; lint.smallTable in the config) is no finding, and one',
        "on a large table states the table's rows, size and expected lock hold time. Lint needs no config file.",
        '',
        'Ignore comments: -- phaseflag-lint-ignore rule-a, rule-b   (the next statement)',
        '                 -- phaseflag-lint-ignore-file rule        (the whole file)',
        '',
        'Exit codes: 0 clean or warnings only, 1 error-level findings, 2 bad input (PF_LINT_SYNTAX with file:line:column,',
        'PF_LINT_FILE_NOT_FOUND, PF_LINT_UNKNOWN_RULE, …); nothing else is run.',
        '',
        'Example:',
        '  npx phaseflag lint migrations/ --reporter github',
      ].join('\n'),
    )
    .action(
      action(async (out, opts, paths: string[]) => {
        if (opts.listRules) {
          for (const r of RULES)
            out.line(
              `${r.name.padEnd(46)} ${r.level.padEnd(8)} ${r.summary}${r.squawk && r.squawk !== r.name ? ` (squawk: ${r.squawk})` : ''}`,
            );
          out.result({ rules: RULES });
          return EXIT.ok;
        }
        const reporter: Reporter = opts.json ? 'json' : ((opts.reporter as Reporter | undefined) ?? 'text');
        if (paths.length === 0 && !opts.migrations) {
          throw new CliError(
            'PF_USAGE_BAD_OPTION',
            'Nothing to lint: give files or directories, or --migrations.',
            'e.g. `phaseflag lint migrations/` or `phaseflag lint --migrations --database-url …`.',
          );
        }
        const config = await loadLintConfig(opts.config);
        const pgVersion = integerOption(opts.pgVersion, '--pg-version', 9, 99, 'major versions');
        const url = opts.databaseUrl ?? config?.database.url;
        let session: Session | undefined;
        let knex: Knex | undefined;
        try {
          let migrations: Array<{ migration: Migration; handle: MigrationHandle }> = [];
          if (opts.migrations) {
            // Plans read the catalog: the migrations' database, as every other command opens it.
            session = await openSession(opts, out, { install: false });
            knex = session.knex;
            migrations = session.config.migrations.map((m) => session!.migration(m.id));
          } else if (url) {
            knex = knexFactory({
              client: 'pg',
              connection: {
                connectionString: url,
                connectionTimeoutMillis: 10_000,
                application_name: 'phaseflag-lint',
              },
              pool: { min: 0, max: 1 },
              log: knexLog(out),
            });
          }
          const result = await runLint({
            paths,
            config: config?.lint ?? {},
            exclude: list(opts.exclude),
            only: list(opts.rule),
            ...(opts.assumeInTransaction ? { assumeInTransaction: true } : {}),
            ...(pgVersion !== undefined ? { pgVersion } : {}),
            ...(knex ? { knex } : {}),
            migrations,
          });
          if (reporter === 'json') process.stdout.write(`${JSON.stringify(jsonReport(result), null, 2)}\n`);
          else if (reporter === 'github')
            for (const f of result.findings) process.stdout.write(`${githubAnnotation(f)}\n`);
          else printText(out, result);
          return result.findings.some((f) => f.level === 'error') ? EXIT.lintFindings : EXIT.ok;
        } finally {
          if (session) await session.close();
          else await knex?.destroy();
        }
      }),
    );
}
