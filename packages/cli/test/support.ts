/**
 * Runs the built binary as a person or a script would, in a working directory of its own that holds a
 * phaseflag.config.ts, against the suite's schema of the real test database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Suite } from '@phaseflag/testkit';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const HERE = fileURLToPath(new URL('.', import.meta.url));

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build the package first (npm run build -w @phaseflag/cli)`);

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the suites probe the --json output freely
  json<T = Record<string, any>>(): T;
}

export interface Workdir {
  dir: string;
  env: Record<string, string>;
  /** Runs `phaseflag <args>` to the end. */
  run(args: string[], options?: { env?: Record<string, string | undefined>; timeoutMs?: number }): Promise<CliRun>;
  /** Starts `phaseflag <args>` and returns the child (stdout/stderr collected into the returned buffers). */
  start(
    args: string[],
    options?: { env?: Record<string, string | undefined> },
  ): { child: ChildProcess; output: { stdout: string; stderr: string }; done: Promise<CliRun> };
  writeConfig(source: string): void;
  remove(): void;
}

/** A directory under this test folder (so the config resolves @phaseflag/* from the repository's node_modules). */
export function workdir(suite: Suite | undefined, extraEnv: Record<string, string> = {}): Workdir {
  const dir = join(HERE, `.work-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const env: Record<string, string> = {
    ...(suite ? { DATABASE_URL: suite.databaseUrl, PHASEFLAG_STATE_SCHEMA: suite.stateSchema } : {}),
    ...extraEnv,
  };
  const childEnv = (extra: Record<string, string | undefined> = {}) => {
    const e: Record<string, string | undefined> = {
      ...process.env,
      NO_COLOR: undefined,
      FORCE_COLOR: undefined,
      UNLEASH_URL: undefined,
      UNLEASH_API_TOKEN: undefined,
      UNLEASH_ADMIN_TOKEN: undefined,
      ...env,
      ...extra,
    };
    return Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as Record<string, string>;
  };
  const start: Workdir['start'] = (args, options = {}) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: childEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (output.stdout += String(d)));
    child.stderr.on('data', (d) => (output.stderr += String(d)));
    const done = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
      ...output,
      json: <T>() => {
        try {
          return JSON.parse(output.stdout) as T;
        } catch {
          throw new Error(`stdout is not JSON:\n${output.stdout}\nstderr:\n${output.stderr}`);
        }
      },
    }));
    return { child, output, done };
  };
  return {
    dir,
    env,
    start,
    run: async (args, options = {}) => {
      const s = start(args, options);
      const timer = setTimeout(() => s.child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
      try {
        return await s.done;
      } finally {
        clearTimeout(timer);
      }
    },
    writeConfig: (source) => writeFileSync(join(dir, 'phaseflag.config.ts'), source),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A config with one int → numeric migration on `<schema>.orders`. */
export function ordersConfig(
  schema: string,
  id = 'orders-amount',
  batch = '{ size: 100, targetBatchMs: 0, pauseMs: 0 }',
): string {
  return `import { defineConfig } from '@phaseflag/cli';

export default defineConfig({
  migrations: [{
    id: '${id}',
    table: '${schema}.orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)' },
    backfill: 'amount_cents::numeric / 100',
    reverse: '(amount * 100)::integer',
    batch: ${batch},
  }],
});
`;
}

export async function createOrders(suite: Suite, rows: number, table = 'orders'): Promise<void> {
  await suite.knex.raw('DROP TABLE IF EXISTS ?? CASCADE', [table]);
  await suite.knex.raw('CREATE TABLE ?? (id bigint PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
  await suite.knex.raw('INSERT INTO ?? SELECT g, g * 7 FROM generate_series(1, ?::int) AS g', [table, rows]);
  await suite.knex.raw('ANALYZE ??', [table]);
}

/** Rows whose new column is not the expression of the old one (0 when the backfill is complete and right). */
export async function wrongRows(suite: Suite, table = 'orders'): Promise<number> {
  return (
    await suite.knex.raw(
      'SELECT count(*)::int AS n FROM ?? WHERE amount IS DISTINCT FROM (amount_cents::numeric / 100)::numeric(12,2)',
      [table],
    )
  ).rows[0].n;
}

export async function phaseOf(suite: Suite, id: string): Promise<string | undefined> {
  return (await suite.knex.raw('SELECT phase FROM ??.migrations WHERE id = ?', [suite.stateSchema, id])).rows[0]?.phase;
}

export async function rangeTotals(suite: Suite, id: string): Promise<{ rowsDone: number; batches: number }> {
  const r = (
    await suite.knex.raw(
      'SELECT coalesce(sum(rows_done), 0)::int AS rows_done, coalesce(sum(batches), 0)::int AS batches FROM ??.backfill_ranges WHERE migration_id = ?',
      [suite.stateSchema, id],
    )
  ).rows[0];
  return { rowsDone: r.rows_done, batches: r.batches };
}
