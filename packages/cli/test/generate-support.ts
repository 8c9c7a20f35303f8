/** What the generate suites share: tables, a config of several migrations, flags turned on through Unleash. */
import assert from 'node:assert/strict';
import { waitFor, type Suite, type UnleashServer } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import type { Workdir } from './support.js';

/** orders-shaped tables: integer cents, NOT NULL, a primary key; rows made by generate_series. */
export async function createTable(suite: Suite, table: string, rows: number): Promise<void> {
  await suite.knex.raw('CREATE TABLE ?? (id bigint PRIMARY KEY, amount_cents integer NOT NULL)', [table]);
  await suite.knex.raw('INSERT INTO ?? SELECT g, g * 7 FROM generate_series(1, ?::int) AS g', [table, rows]);
  await suite.knex.raw('ANALYZE ??', [table]);
}

/** One int → numeric(12,2) migration per id on its own table, with an index, a check and NOT NULL at contract. */
export function configOf(schema: string, migrations: Record<string, string>): string {
  const list = Object.entries(migrations).map(
    ([id, table]) => `{
    id: '${id}',
    table: '${schema}.${table}',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true, check: 'amount >= 0' },
    backfill: 'amount_cents::numeric / 100',
    reverse: '(amount * 100)::integer',
    batch: { size: 200, targetBatchMs: 0, pauseMs: 0 },
  }`,
  );
  return `import { defineConfig } from '@phaseflag/cli';

export default defineConfig({ migrations: [${list.join(', ')}] });
`;
}

export interface Recorded {
  phase: string | undefined;
  version: number | undefined;
  events: number;
  lastActor: string | undefined;
}

/** The migration's row and events as the state store holds them. */
export async function recorded(suite: Suite, id: string): Promise<Recorded> {
  const row = (await suite.knex.raw('SELECT phase, version FROM ??.migrations WHERE id = ?', [suite.stateSchema, id]))
    .rows[0] as { phase: string; version: string } | undefined;
  const events = (
    await suite.knex.raw(
      "SELECT count(*)::int AS n, (array_agg(actor ORDER BY id DESC) FILTER (WHERE kind = 'transition'))[1] AS actor FROM ??.events WHERE migration_id = ?",
      [suite.stateSchema, id],
    )
  ).rows[0] as { n: number; actor: string | null };
  return {
    phase: row?.phase,
    version: row === undefined ? undefined : Number(row.version),
    events: events.n,
    lastActor: events.actor ?? undefined,
  };
}

/** What expand leaves on the table: the column, its index (valid) and its check (validated). */
export async function expandObjects(
  suite: Suite,
  table: string,
): Promise<{ column: boolean; indexValid: boolean | null; checkValidated: boolean | null }> {
  const r = (
    await suite.knex.raw(
      `SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(?) AND attname = 'amount' AND NOT attisdropped) AS column,
              (SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = to_regclass(?) AND c.relname LIKE 'pf_idx_%') AS "indexValid",
              (SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass(?) AND conname LIKE 'pf_chk_%') AS "checkValidated"`,
      [`"${suite.schema}"."${table}"`, `"${suite.schema}"."${table}"`, `"${suite.schema}"."${table}"`],
    )
  ).rows[0] as { column: boolean; indexValid: boolean | null; checkValidated: boolean | null };
  return r;
}

/** Creates the migration's four flags (off), turns `on` on in development, and waits until clients see them. */
export async function flagsOn(w: Workdir, unleash: UnleashServer, id: string, on: readonly string[]): Promise<void> {
  const provision = await w.run(['provision', id]);
  assert.equal(provision.code, EXIT.ok, provision.stderr);
  for (const step of on) {
    // Fully on (read-new is provisioned at a 0% rollout; contract asks for read-new at 100%).
    const flag = await unleash.admin.getFlag(`${id}.${step}`);
    const strategies = flag?.environments.find((e) => e.name === 'development')?.strategies ?? [];
    for (const s of strategies) await unleash.admin.setRollout(`${id}.${step}`, 'development', s.id, 100);
    await unleash.admin.enable(`${id}.${step}`, 'development');
  }
  const expected = ['dual-write', 'backfill', 'read-new', 'contract'].map((s) => on.includes(s));
  await waitFor(
    async () => {
      const flags = (await w.run(['status', id, '--json'])).json().migrations[0].flags as Array<{ enabled: boolean }>;
      return JSON.stringify(flags.map((f) => f.enabled)) === JSON.stringify(expected);
    },
    { timeoutMs: 20_000, description: `flags of ${id} to reach clients` },
  );
}

/** The controller in the foreground (`phaseflag run`) until the flags are satisfied; returns the phase it left. */
export async function runController(w: Workdir, id: string): Promise<string> {
  const run = await w.run(['run', id, '--interval', '200', '--json'], { timeoutMs: 120_000 });
  assert.equal(run.code, EXIT.ok, run.stderr);
  return run.json().phase as string;
}
