import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { CliError } from '../errors.js';
import { importLocal } from '../local-module.js';

/** A throw-away database built from the project's schema, for `phaseflag check` when no database is given. */
export interface ScratchDatabase {
  url: string;
  /** What built it: `schema.sql`, `8 SQL files in db/migrations`, `5 knex migrations in migrations`. */
  builtFrom: string;
  close(): Promise<void>;
}

const KNEX_EXTENSIONS = new Set(['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts']);

/**
 * Starts an embedded PostgreSQL (`@phaseflag/local`) and builds the schema in it from `schemaPath`: a `.sql` file
 * (e.g. `pg_dump --schema-only`; psql's own backslash commands are skipped), a directory of `.sql` files (run in
 * name order, numbers compared as numbers: Flyway's and golang-migrate's `up` files), or a directory of knex
 * migrations (run by knex's own migrator).
 */
export async function openScratchDatabase(schemaPath: string): Promise<ScratchDatabase> {
  const path = resolve(schemaPath);
  if (!existsSync(path)) {
    throw new CliError(
      'PF_USAGE_BAD_OPTION',
      `--schema ${schemaPath}: no such file or directory.`,
      'Pass a schema file (pg_dump --schema-only), a directory of SQL migrations, or a directory of knex migrations.',
      schemaPath,
    );
  }
  const local = await importLocal({
    message: 'No database to plan on, and the embedded PostgreSQL it would start is missing:',
    hint: 'Pass --database-url (or set DATABASE_URL), or install the embedded one: ',
  });
  const server = await local.startPostgres({ database: 'phaseflag_check' });
  const knex = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 2 } });
  try {
    const builtFrom = await buildSchema(knex, server.url, path, schemaPath);
    return {
      url: server.url,
      builtFrom,
      close: async () => {
        await knex.destroy().catch(() => undefined);
        await server.stop();
      },
    };
  } catch (error) {
    await knex.destroy().catch(() => undefined);
    await server.stop();
    throw error;
  }
}

async function buildSchema(knex: Knex, url: string, path: string, given: string): Promise<string> {
  if (!statSync(path).isDirectory()) {
    await runSqlFile(url, path, given);
    return given;
  }
  const files = readdirSync(path).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const sql = files.filter((f) => extname(f) === '.sql' && !f.endsWith('.down.sql'));
  if (sql.length > 0) {
    for (const f of sql) await runSqlFile(url, join(path, f), join(given, f));
    return `${sql.length} SQL file${sql.length === 1 ? '' : 's'} in ${given}`;
  }
  const migrations = files.filter((f) => KNEX_EXTENSIONS.has(extname(f)) && !f.endsWith('.d.ts'));
  if (migrations.length === 0) {
    throw new CliError(
      'PF_USAGE_BAD_OPTION',
      `--schema ${given}: the directory holds no .sql files and no knex migrations.`,
      'Point --schema at the directory of your migrations, or at a schema file.',
      given,
    );
  }
  try {
    await knex.migrate.latest({ directory: path, loadExtensions: [...KNEX_EXTENSIONS] });
  } catch (error) {
    throw schemaError(given, error);
  }
  return `${migrations.length} knex migration${migrations.length === 1 ? '' : 's'} in ${given}`;
}

async function runSqlFile(url: string, path: string, shown: string): Promise<void> {
  // psql's meta-commands (pg_dump writes \restrict, \connect) are not SQL: the server would reject them.
  const text = readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => (line.startsWith('\\') ? '' : line))
    .join('\n');
  // One simple-protocol query runs the whole file, as psql -f would statement by statement (no parameters, so a `?`
  // or a dollar-quoted body reaches the server as written).
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } catch (error) {
    throw schemaError(shown, error);
  } finally {
    await client.end();
  }
}

function schemaError(shown: string, error: unknown): CliError {
  return new CliError(
    'PF_USAGE_BAD_OPTION',
    `--schema ${shown} did not build on an empty database: ${(error as Error).message}.`,
    'Fix the schema (it must build on an empty database), or pass --database-url to check against a real one.',
    shown,
  );
}
