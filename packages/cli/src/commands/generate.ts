import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_STATE_SCHEMA } from '@phaseflag/postgres';
import { generateSqlMigration, internalsOf } from '@phaseflag/postgres/internal';
import type { Command } from 'commander';
import { findMigration, loadConfig } from '../config.js';
import { CliError } from '../errors.js';
import { declarationOf } from '../generate/declaration.js';
import { KNEX_EXTENSIONS, renderKnexFile, type KnexExtension, type KnexStep } from '../generate/knex-files.js';
import {
  fileSafeId,
  formerlyGenerated,
  SQL_NAMINGS,
  sqlFiles,
  timestampOf,
  versionAt,
  type GeneratedFile,
  type SqlNaming,
} from '../generate/sql-files.js';
import type { Output } from '../output.js';
import { action } from '../program.js';
import { openSession, type GlobalOptions } from '../runtime.js';

const FORMATS = ['knex', 'sql'] as const;
const STEPS: readonly KnexStep[] = ['expand', 'contract'];

const EXAMPLES = `
Examples:
  $ phaseflag generate orders-amount --format knex --out migrations
      migrations/20261207063000_orders-amount_expand.js    knex: expand through the engine; down rolls back
      migrations/20261207063001_orders-amount_contract.js  knex: contract from read-new (no-op once contracted)
  $ phaseflag generate orders-amount --format sql --out db/migrations     (golang-migrate names)
      20261207063000_orders-amount_expand.up.sql / .down.sql           column + check NOT VALID, registers it
      20261207063001_orders-amount_expand_index.up.sql / .down.sql     CREATE INDEX CONCURRENTLY, alone
      20261207063002_orders-amount_expand_record.up.sql / .down.sql    VALIDATE, records "expanded"
  $ phaseflag generate orders-amount --format sql --naming flyway --out sql    (V…__….sql, U…__….sql)
`;

function choice<T extends string>(value: unknown, allowed: readonly T[], option: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new CliError(
    'PF_USAGE_BAD_OPTION',
    `Unknown ${option} ${JSON.stringify(value)}.`,
    `Use ${option} ${allowed.join(' or ')}.`,
    value,
  );
}

function timestampOption(value: unknown): string {
  if (value === undefined) return timestampOf(new Date());
  if (typeof value === 'string' && /^\d{14}$/.test(value)) return value;
  throw new CliError(
    'PF_USAGE_BAD_OPTION',
    `Invalid --timestamp ${JSON.stringify(value)}.`,
    'Give 14 digits, yyyymmddhhmmss (UTC), e.g. 20261207063000; the files are numbered from it, one second apart.',
    value,
  );
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .argument('<id>', 'migration id (from the config)')
    .description(
      "migration files for your own pipeline: knex files that run the steps through the engine, or SQL files (Flyway, golang-migrate, sqitch) that run expand's statements and record it in the state store",
    )
    .requiredOption('--format <format>', 'knex or sql')
    .option(
      '--out <dir>',
      'directory to write to (created if missing; existing files are never overwritten)',
      'migrations',
    )
    .option('--only <step>', 'knex: write only the expand or only the contract file (default: both)')
    .option(
      '--extension <ext>',
      'knex: js (CommonJS, a project without "type": "module"), cjs (CommonJS, any project) or mjs (ES module; add .mjs to knex\'s loadExtensions)',
      'js',
    )
    .option('--drop-old-column', 'knex: the contract file also drops the old column')
    .option(
      '--naming <tool>',
      'sql: golang-migrate (<n>_<id>_<part>.up.sql/.down.sql) or flyway (V<n>__…sql, U<n>__…sql)',
    )
    .option('--timestamp <yyyymmddhhmmss>', 'version of the first file (default: now, UTC)')
    .addHelpText('after', EXAMPLES)
    .action(
      action(async (out, opts, id: string) => {
        const format = choice(opts.format, FORMATS, '--format', 'knex');
        const timestamp = timestampOption(opts.timestamp);
        const dir = resolve(String(opts.out));
        const files =
          format === 'knex' ? await knexFiles(opts, id, timestamp) : await sqlFileSet(out, opts, id, timestamp);
        writeAll(dir, id, files, format === 'knex' ? files.map((f) => f.step) : ['expand']);
        for (const f of files)
          out.line(
            `${out.c.green('wrote')} ${join(String(opts.out), f.name)}  ${out.c.dim(`${f.step} ${f.direction}${f.transactional ? '' : ', outside a transaction'}`)}`,
          );
        out.result({
          migrationId: id,
          format,
          directory: dir,
          files: files.map((f) => ({
            path: join(dir, f.name),
            step: f.step,
            direction: f.direction,
            transactional: f.transactional,
          })),
        });
      }),
    );
}

async function knexFiles(
  opts: GlobalOptions & Record<string, unknown>,
  id: string,
  timestamp: string,
): Promise<GeneratedFile[]> {
  if (opts.naming !== undefined)
    throw new CliError(
      'PF_USAGE_BAD_OPTION',
      '--naming applies to --format sql.',
      'Drop --naming, or use --format sql.',
      opts.naming,
    );
  const only = opts.only === undefined ? undefined : choice(opts.only, STEPS, '--only', 'expand');
  const extension = choice<KnexExtension>(opts.extension, KNEX_EXTENSIONS, '--extension', 'js');
  const config = await loadConfig(opts.config);
  const migration = findMigration(config, id);
  const declaration = declarationOf(migration);
  const stateSchema = opts.stateSchema ?? config.database.stateSchema ?? DEFAULT_STATE_SCHEMA;
  const steps = only ? [only] : STEPS;
  return steps.map((step, i) => {
    const name = `${versionAt(timestamp, i)}_${fileSafeId(id)}_${step}.${extension}`;
    const content = renderKnexFile({
      step,
      extension,
      fileName: name,
      migrationId: id,
      declaration,
      stateSchema,
      dropOldColumn: opts.dropOldColumn === true,
      version: cliVersion(),
    });
    return { name, content, step, direction: 'up', transactional: false };
  });
}

async function sqlFileSet(
  out: Output,
  opts: GlobalOptions & Record<string, unknown>,
  id: string,
  timestamp: string,
): Promise<GeneratedFile[]> {
  for (const knexOnly of ['only', 'dropOldColumn'] as const)
    if (opts[knexOnly] !== undefined)
      throw new CliError(
        'PF_USAGE_BAD_OPTION',
        `--${knexOnly === 'only' ? 'only' : 'drop-old-column'} applies to --format knex.`,
        'SQL files cover expand (the controller, or `phaseflag contract`, carries the migration on from there).',
        opts[knexOnly],
      );
  const naming = choice<SqlNaming>(opts.naming, SQL_NAMINGS, '--naming', 'golang-migrate');
  // The DDL comes from the plan, which reads the live catalog (types as Postgres spells them, the table's key).
  const session = await openSession(opts, out, { install: false });
  try {
    const { migration } = session.migration(id);
    return sqlFiles(await generateSqlMigration(internalsOf(session.pf).ctx, migration), naming, timestamp);
  } finally {
    await session.close();
  }
}

/** Writes every file or none: an existing one, or an earlier generation of the same step, refuses them all. */
function writeAll(dir: string, id: string, files: readonly GeneratedFile[], steps: readonly string[]): void {
  const present = existsSync(dir) ? readdirSync(dir) : [];
  const clashes = [
    ...new Set([
      ...files.map((f) => f.name).filter((n) => present.includes(n)),
      ...formerlyGenerated(present, id, steps),
    ]),
  ];
  if (clashes.length > 0) {
    throw new CliError(
      'PF_USAGE_FILE_EXISTS',
      `${dir} already holds ${clashes.join(', ')}: nothing was written.`,
      'A step generated twice would run twice under two names. Keep the files you have, or delete them (if no database ran them yet) and generate again.',
      clashes,
    );
  }
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.name), f.content, { flag: 'wx' });
}

let version: string | undefined;
/** The CLI's version, for the generated file's header (package.json sits above dist/ and above src/commands/). */
function cliVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (version === undefined && existsSync(url))
      version = (JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version: string }).version;
  }
  return version ?? 'unknown';
}
