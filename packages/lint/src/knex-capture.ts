import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { Chunk } from './analyze.js';
import { LintError } from './errors.js';

type KnexFactory = (config: Record<string, unknown>) => { client: { constructor: new (c: unknown) => unknown } };

interface MigrationModule {
  up?: (knex: unknown) => unknown;
  config?: { transaction?: boolean };
}

/**
 * The SQL a knex migration's `up` would send, without a database: a knex instance whose pg client records each
 * query and answers with no rows (so `hasTable` is false and a migration that asks first creates), and the line of
 * the migration file that made each call (the stack at the call, read for the file's own frame). Runs in a
 * transaction unless the file exports `config = { transaction: false }`, as knex's migrator does.
 */
export async function captureKnexMigration(path: string): Promise<{ chunks: Chunk[]; inTransaction: boolean }> {
  const mod = await load(path);
  const up = mod.up;
  if (typeof up !== 'function') {
    throw new LintError('PF_LINT_MIGRATION_LOAD', `${path} exports no up(knex) function: it is not a knex migration.`, {
      value: path,
      file: path,
      hint: 'Lint knex migration files (exports.up / export async function up) and .sql files; other modules are not migrations.',
    });
  }
  const chunks: Chunk[] = [];
  const recorder = recordingKnex(path, chunks);
  try {
    await up(recorder);
  } catch (error) {
    throw new LintError(
      'PF_LINT_MIGRATION_LOAD',
      `${path}: up() failed while its SQL was captured: ${(error as Error).message}.`,
      {
        value: path,
        file: path,
        hint: 'Lint captures SQL with a knex that runs nothing and returns no rows; a migration that needs real query results cannot be captured: lint its SQL instead.',
        cause: error,
      },
    );
  }
  return { chunks, inTransaction: mod.config?.transaction !== false };
}

async function load(path: string): Promise<MigrationModule> {
  try {
    const { tsImport } = await import('tsx/esm/api');
    const mod = (await tsImport(pathToFileURL(path).href, import.meta.url)) as MigrationModule & {
      default?: MigrationModule;
    };
    return typeof mod.up === 'function' ? mod : (mod.default ?? mod);
  } catch (error) {
    throw new LintError('PF_LINT_MIGRATION_LOAD', `Cannot load ${path}: ${(error as Error).message}.`, {
      value: path,
      file: path,
      hint: 'Fix the error in the migration file (or a module it imports).',
      cause: error,
    });
  }
}

function knexFactory(from: string): KnexFactory {
  // The application's own knex (a peer dependency), resolved from the migration file, then from lint itself.
  for (const base of [from, import.meta.url]) {
    try {
      const mod = createRequire(base)('knex') as KnexFactory & { knex?: KnexFactory };
      return mod.knex ?? mod;
    } catch {
      // try the next place
    }
  }
  throw new LintError('PF_LINT_MIGRATION_LOAD', `${from} is a knex migration, but knex cannot be found.`, {
    value: from,
    file: from,
    hint: "Install knex in the project (npm install knex): lint uses the project's own copy to capture the SQL.",
  });
}

/** The first stack frame in the migration file: `{ line, column }` of the call that built the query. */
function callSite(path: string): { line: number; column: number } | undefined {
  const href = pathToFileURL(path).href;
  for (const frame of (new Error().stack ?? '').split('\n').slice(1)) {
    if (!frame.includes(href) && !frame.includes(path)) continue;
    // `at up (file:///…/001.mjs?tsx-namespace=…:12:5)`: the line and column are the last two fields.
    const fields = frame.trim().replace(/\)$/, '').split(':');
    const column = Number.parseInt(fields.at(-1) ?? '', 10);
    const line = Number.parseInt(fields.at(-2) ?? '', 10);
    if (line > 0 && column > 0) return { line, column };
  }
  return undefined;
}

function recordingKnex(path: string, chunks: Chunk[]): unknown {
  const knex = knexFactory(path);
  const PgClient = knex({ client: 'pg' }).client.constructor as new (config: unknown) => Record<string, unknown>;
  let site: { line: number; column: number } | undefined;
  class RecordingClient extends PgClient {
    constructor(config: unknown) {
      super(config);
    }
    _driver() {
      return {};
    }
    acquireConnection() {
      return Promise.resolve({ __knexUid: 'phaseflag-lint' });
    }
    releaseConnection() {
      return Promise.resolve();
    }
    query(_connection: unknown, q: string | { sql: string; bindings?: unknown[] }) {
      const obj = typeof q === 'string' ? { sql: q } : q;
      const raw = this.raw as (sql: string, b: unknown[]) => { toString(): string };
      const sql = obj.bindings && obj.bindings.length > 0 ? raw.call(this, obj.sql, obj.bindings).toString() : obj.sql;
      chunks.push({ sql, ...(site ? { origin: site } : {}) });
      return Promise.resolve({ ...obj, response: { rows: [], fields: [], rowCount: 0, command: 'SELECT' } });
    }
  }
  const instance = knex({ client: RecordingClient, connection: {}, pool: { min: 0, max: 1 } }) as unknown as object;
  // Each use of the instance (knex('t'), knex.schema, knex.raw) records where in the migration file it happened;
  // the queries it then sends point there.
  return new Proxy(instance, {
    apply(target, thisArg, args) {
      site = callSite(path) ?? site;
      return Reflect.apply(target as (...a: unknown[]) => unknown, thisArg, args);
    },
    get(target, prop, receiver) {
      if (prop === 'schema' || prop === 'raw' || prop === 'transaction') site = callSite(path) ?? site;
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

/**
 * Ignore comments in a knex migration are JavaScript comments: `// phaseflag-lint-ignore rule` on the line above a
 * call applies to the statements it sends, `// phaseflag-lint-ignore-file rule` anywhere to the whole file. They
 * become the SQL comments the analysis reads.
 */
export function withJsDirectives(source: string, chunks: readonly Chunk[]): Chunk[] {
  const lines = source.split('\n').map((l) => l.trim());
  const directive = (line: string) => (line.startsWith('//') ? line.slice(2).trim() : '');
  const fileWide = lines.map(directive).filter((d) => d.startsWith('phaseflag-lint-ignore-file'));
  return chunks.map((chunk, i) => {
    const above: string[] = [];
    for (let l = (chunk.origin?.line ?? 0) - 2; l >= 0 && directive(lines[l] ?? '') !== ''; l--) {
      const d = directive(lines[l]!);
      if (d.startsWith('phaseflag-lint-ignore') && !d.startsWith('phaseflag-lint-ignore-file')) above.push(d);
    }
    const comments = [...(i === 0 ? fileWide : []), ...above].map((d) => `-- ${d}\n`).join('');
    return { ...chunk, sql: `${comments}${chunk.sql}` };
  });
}
