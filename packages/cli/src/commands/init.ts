import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { defineMigration, isPhaseflagError } from '@phaseflag/core';
import type { Command } from 'commander';
import { CONFIG_FILES, loadConfig } from '../config.js';
import { addMigrationToConfig } from '../config-edit.js';
import { CliError } from '../errors.js';
import { action } from '../program.js';

interface InitOptions {
  id: string;
  table: string;
  oldColumn: string;
  newColumn: string;
  type: string;
  backfill: string;
  reverse?: string;
  intent?: string;
  dir: string;
  force?: boolean;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description(
      'write a starter phaseflag.config.ts and one migration file in the working directory; with a config there, add the migration to it',
    )
    .option('--id <id>', 'migration id', 'orders-amount')
    .option('--table <table>', 'table to change', 'public.orders')
    .option('--old-column <name>', 'column the application uses today', 'amount_cents')
    .option('--new-column <name>', 'column to add', 'amount')
    .option('--type <type>', 'type of the new column', 'numeric(12,2)')
    .option('--backfill <sql>', 'expression giving the new column from the row', 'amount_cents::numeric / 100')
    .option('--reverse <sql>', 'expression giving the old column from the new one (for writers of the new column only)')
    .option(
      '--intent <intent>',
      "replace: the new column takes the old one's place; derive: it stays beside its source (asked on a terminal; default replace)",
    )
    .option('--dir <dir>', 'where migration files go', 'migrations')
    .option(
      '--force',
      'overwrite an existing migration file (a config is never rewritten: the migration is added to it)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ phaseflag init --intent replace                   # orders.amount_cents (integer cents) → amount numeric(12,2)\n' +
        '  $ phaseflag init --intent derive --id users-email --table users --old-column email --new-column email_lower --type text --backfill "lower(email)"\n' +
        '\nreplace: reads move to the new column and contract may drop the old one.\n' +
        'derive:  the new column stays beside its source: the sync trigger keeps it derived after contract, the source is never dropped,\n' +
        '         reads use it under its own name and writes keep going to the source.',
    )
    .action(
      action(async (out, opts) => {
        const o = opts as unknown as InitOptions;
        const intent = await chooseIntent(o, out.json);
        const input = {
          id: o.id,
          table: o.table,
          oldColumn: o.oldColumn,
          intent,
          newColumn: { name: o.newColumn, type: o.type },
          backfill: o.backfill,
          ...(o.reverse
            ? { reverse: o.reverse }
            : intent === 'replace' && o.id === 'orders-amount' && o.backfill === 'amount_cents::numeric / 100'
              ? { reverse: '(amount * 100)::integer' }
              : {}),
        };
        try {
          defineMigration(input); // refuse what the engine would refuse, before writing anything
        } catch (error) {
          if (isPhaseflagError(error))
            throw new CliError('PF_USAGE_INVALID_MIGRATION', error.message, error.hint, error.value);
          throw error;
        }
        const cwd = process.cwd();
        const existing = CONFIG_FILES.map((f) => resolve(cwd, f)).find((f) => existsSync(f));
        const config = existing ?? resolve(cwd, 'phaseflag.config.ts');
        const dir = resolve(cwd, o.dir);
        const file = join(dir, `${o.id}.ts`);
        if (existing) {
          // Every migration in flight stays declared: a second init adds to the config, never rewrites it.
          const loaded = await loadConfig(existing, cwd);
          if (loaded.migrations.some((m) => m.id === o.id)) {
            throw new CliError(
              'PF_USAGE_DUPLICATE_MIGRATION',
              `${relative(cwd, existing)} declares a migration "${o.id}" already.`,
              'Give the new migration its own --id (each id names its flags and its row in the state store).',
              o.id,
            );
          }
        }
        if (existsSync(file) && !o.force) {
          throw new CliError(
            'PF_USAGE_FILE_EXISTS',
            `${relative(cwd, file) || file} exists already.`,
            'Pass --force to overwrite it, or edit it by hand.',
            file,
          );
        }
        const constName = o.id
          .replace(/[^a-z0-9]+(.)?/gi, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))
          .replace(/^[0-9]/, '_$&');
        const importPath = `./${relative(dirname(config), file).replace(/\\/g, '/').replace(/\.ts$/, '.js')}`;
        // Edited in memory first: a config this cannot edit is refused before any file is written.
        const configText = existing
          ? addMigrationToConfig(readFileSync(existing, 'utf8'), relative(cwd, existing), constName, importPath)
          : configSource(constName, importPath);
        mkdirSync(dir, { recursive: true });
        writeFileSync(file, migrationSource(constName, input));
        writeFileSync(config, configText);
        out.line(`${out.c.green('wrote')} ${relative(cwd, file)}`);
        out.line(`${out.c.green(existing ? 'added to' : 'wrote')} ${relative(cwd, config)}`);
        out.line('');
        out.line('Next:');
        const next: Array<[string, string]> = [
          ['export DATABASE_URL=postgres://…', 'and UNLEASH_URL, UNLEASH_API_TOKEN, UNLEASH_ADMIN_TOKEN for flags'],
          [`phaseflag plan ${o.id}`, 'every statement and its lock; nothing is executed'],
          [`phaseflag provision ${o.id}`, 'the four phase flags in Unleash'],
          [`phaseflag status ${o.id}`, 'phase, flags, guards, backfill, instances'],
        ];
        const width = Math.max(...next.map(([cmd]) => cmd.length)) + 2;
        for (const [cmd, why] of next) out.line(`  ${cmd.padEnd(width)}${out.c.dim(`# ${why}`)}`);
        out.result({ files: [config, file], migrationId: o.id, addedToConfig: existing !== undefined });
      }),
    );
}

/** --intent, else the answer to a question on a terminal, else 'replace' (what a script that never asked gets). */
async function chooseIntent(o: InitOptions, json: boolean): Promise<'replace' | 'derive'> {
  if (o.intent !== undefined) {
    if (o.intent === 'replace' || o.intent === 'derive') return o.intent;
    throw new CliError(
      'PF_USAGE_BAD_OPTION',
      `--intent ${o.intent} is neither "replace" nor "derive".`,
      "Pass --intent replace (the new column takes the old one's place) or --intent derive (it stays beside its source).",
      o.intent,
    );
  }
  if (json || !process.stdin.isTTY || !process.stdout.isTTY) return 'replace';
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    for (;;) {
      const answer = (
        await rl.question(
          `Does "${o.newColumn}" replace "${o.oldColumn}" (reads move to it, "${o.oldColumn}" may be dropped at contract)\n` +
            `or derive from it (it stays beside "${o.oldColumn}", kept in sync for good)? [replace/derive] (replace) `,
        )
      )
        .trim()
        .toLowerCase();
      if (answer === '' || answer === 'r' || answer === 'replace') return 'replace';
      if (answer === 'd' || answer === 'derive') return 'derive';
    }
  } finally {
    rl.close();
  }
}

function migrationSource(constName: string, input: Record<string, unknown>): string {
  return `import { defineMigration } from '@phaseflag/core';

/**
 * One column change, phase by phase: expand (add the column online), dual-write, backfill, verify, read-new,
 * contract. Each human step has an Unleash flag named after the id (${String(input.id)}.dual-write, .backfill, .read-new,
 * .contract); the database's guards decide whether it may happen.
 */
export const ${constName} = defineMigration(${tsLiteral({ ...input, batch: { size: 5000, targetBatchMs: 100, pauseMs: 0 } })});
`;
}

/**
 * A JSON value written as a TypeScript object literal: bare keys, single-quoted strings. Each JSON string is
 * rewritten whole, escape by escape, so a name holding quotes, backslashes or any other character round-trips.
 */
function tsLiteral(value: unknown): string {
  return JSON.stringify(value, null, 2)
    .replace(/^(\s*)"([A-Za-z_$][\w$]*)":/gm, '$1$2:')
    .replace(/"((?:[^"\\]|\\.)*)"/g, (_token, body: string) => {
      // JSON's escapes are JavaScript's too: keep them, except that \" needs none and ' does.
      const text = body.replace(/\\([\s\S])|'/g, (m, escaped: string | undefined) =>
        escaped === undefined ? "\\'" : escaped === '"' ? '"' : m,
      );
      return `'${text}'`;
    });
}

function configSource(constName: string, importPath: string): string {
  return `import { defineConfig } from '@phaseflag/cli';
import { ${constName} } from '${importPath}';

export default defineConfig({
  migrations: [${constName}],
  // Flags and the environment override these: --database-url / DATABASE_URL (--direct-url / PHASEFLAG_DIRECT_URL
  // when that goes through a transaction pooler), --unleash-url / UNLEASH_URL,
  // UNLEASH_API_TOKEN (client token: status, run), UNLEASH_ADMIN_TOKEN (admin token: provision).
  database: { stateSchema: 'phaseflag' },
  unleash: { project: 'default', environment: 'development' },
});
`;
}
