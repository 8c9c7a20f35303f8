import { quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import { qualify } from '../../sql/text.js';
import { describeTableDefinition, type CopyStatement, type TableDefinition, type TableRef } from './copy-definition.js';

export interface CopyTableOptions {
  /** The source: only read (READ ONLY transactions), never written. */
  source: Knex;
  /** The rehearsal database the copy is built in. */
  target: Knex;
  table: TableRef;
  /** Rows to read from the source (TABLESAMPLE BERNOULLI, a fixed seed, at most this many). */
  sample: number;
  /** Rows to scale the copy to on the target (≥ sample; more only when the key allows it, see `scaled`). */
  rows: number;
}

export interface CopyTableResult {
  readonly definition: TableDefinition;
  /** How the rows were chosen, in words (for the report). */
  readonly method: string;
  readonly sampledRows: number;
  /** Rows in the copy after scaling. */
  readonly rows: number;
  /** Why the copy holds fewer rows than asked for (null when it holds them all). */
  readonly scaleNote: string | null;
  readonly parents: readonly { table: TableRef; constraint: string; rows: number }[];
  readonly statements: readonly CopyStatement[];
  readonly skipped: readonly { what: string; why: string }[];
  readonly durationMs: number;
}

const CHUNK = 5000;
const SEED = 20_261_207;

/**
 * Copies `table` from the source into the target: its definition (see describeTableDefinition), a sample of its
 * rows, the rows of the tables its foreign keys reference that the sample points at, then scales the rows up to
 * `rows` by copying the sample with shifted keys (a single integer primary key and no other unique key: anything
 * else stops at the sample, and the report's projection covers the difference).
 */
export async function copyTable(o: CopyTableOptions): Promise<CopyTableResult> {
  const started = Date.now();
  const def = await describeTableDefinition(o.source, o.table);
  for (const s of def.statements.filter((x) => x.when === 'before-rows')) await o.target.raw(s.sql);
  const percent = def.rowsEstimate > 0 ? Math.min(100, ((o.sample * 1.2) / def.rowsEstimate) * 100 + 0.01) : 100;
  const method =
    percent >= 100
      ? `every row up to ${o.sample} (the table holds fewer than about ${Math.ceil(o.sample * 1.2)})`
      : `TABLESAMPLE BERNOULLI (${percent.toFixed(3)} %) REPEATABLE (${SEED}), first ${o.sample}: rows drawn uniformly from the whole table`;
  const rows = await readOnly<{ r: unknown }[]>(o.source, async (trx) =>
    percent >= 100
      ? ((
          await trx.raw(`SELECT to_jsonb(t) AS r FROM ${qualify(o.table.schema, o.table.name)} AS t LIMIT ?`, [
            o.sample,
          ])
        ).rows as unknown)
      : ((
          await trx.raw(
            `SELECT to_jsonb(t) AS r FROM ${qualify(o.table.schema, o.table.name)} AS t TABLESAMPLE BERNOULLI (?) REPEATABLE (?) LIMIT ?`,
            [percent, SEED, o.sample],
          )
        ).rows as unknown),
  );
  await insertJson(
    o.target,
    o.table,
    def.insertColumns,
    rows.map((r) => r.r),
  );
  const parents: { table: TableRef; constraint: string; rows: number }[] = [];
  for (const p of def.parents) {
    const child = qualify(o.table.schema, o.table.name);
    const cols = p.childColumns.map(quoteIdent);
    const keys = (
      await o.target.raw(
        `SELECT DISTINCT ${cols.join(', ')} FROM ${child} WHERE ${cols.map((c) => `${c} IS NOT NULL`).join(' AND ')}`,
      )
    ).rows as Record<string, unknown>[];
    let copied = 0;
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys
        .slice(i, i + CHUNK)
        .map((k) => Object.fromEntries(p.parentColumns.map((c, j) => [c, k[p.childColumns[j]!]])));
      const recordType = p.parentColumns.map((c, j) => `${quoteIdent(c)} ${p.parentTypes[j]}`).join(', ');
      const match = p.parentColumns.map((c) => `p.${quoteIdent(c)}`).join(', ');
      const got = await readOnly<{ r: unknown }[]>(
        o.source,
        async (trx) =>
          (
            await trx.raw(
              `SELECT to_jsonb(p) AS r FROM ${qualify(p.table.schema, p.table.name)} AS p
              WHERE (${match}) IN (SELECT ${p.parentColumns.map((c) => `k.${quoteIdent(c)}`).join(', ')} FROM jsonb_to_recordset(?::jsonb) AS k(${recordType}))`,
              [JSON.stringify(chunk)],
            )
          ).rows as unknown,
      );
      const parentDef = await parentColumns(o.target, p.table);
      copied += await insertJson(
        o.target,
        p.table,
        parentDef,
        got.map((r) => r.r),
        true,
      );
    }
    parents.push({ table: p.table, constraint: p.constraint, rows: copied });
  }
  const { total, note } = await scale(o.target, def, rows.length, o.rows);
  for (const s of def.statements.filter((x) => x.when === 'after-rows')) await o.target.raw(s.sql);
  for (const c of def.sequenceColumns) {
    const t = qualify(o.table.schema, o.table.name);
    await o.target.raw(
      `SELECT setval(pg_get_serial_sequence(?, ?), greatest((SELECT max(${quoteIdent(c)}) FROM ${t}), 1))`,
      [t, c],
    );
  }
  await o.target.raw(`ANALYZE ${qualify(o.table.schema, o.table.name)}`);
  return {
    definition: def,
    method,
    sampledRows: rows.length,
    rows: total,
    scaleNote: note,
    parents,
    statements: def.statements,
    skipped: def.skipped,
    durationMs: Date.now() - started,
  };
}

/** `fn` in a READ ONLY transaction on the source; the rows it returns are typed by the caller's query. */
async function readOnly<T>(knex: Knex, fn: (trx: Knex.Transaction) => Promise<unknown>): Promise<T> {
  return (await knex.transaction(fn, { readOnly: true })) as T;
}

async function parentColumns(target: Knex, table: TableRef): Promise<string[]> {
  const { rows } = await target.raw(
    `SELECT a.attname AS name FROM pg_attribute a WHERE a.attrelid = ?::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`,
    [qualify(table.schema, table.name)],
  );
  return (rows as { name: string }[]).map((r) => r.name);
}

/** Inserts rows given as JSON objects; jsonb_populate_recordset casts each field by its column's input function. */
async function insertJson(
  target: Knex,
  table: TableRef,
  columns: readonly string[],
  rows: unknown[],
  skipExisting = false,
): Promise<number> {
  const t = qualify(table.schema, table.name);
  const list = columns.map(quoteIdent).join(', ');
  let inserted = 0;
  for (let i = 0; i < rows.length; i += CHUNK) {
    const r = await target.raw(
      `INSERT INTO ${t} (${list}) OVERRIDING SYSTEM VALUE SELECT ${list} FROM jsonb_populate_recordset(NULL::${t}, ?::jsonb)${skipExisting ? ' ON CONFLICT DO NOTHING' : ''}`,
      [JSON.stringify(rows.slice(i, i + CHUNK))],
    );
    inserted += r.rowCount ?? 0;
  }
  return inserted;
}

/** Doubles the rows by copying them with the key shifted past the maximum, until `want` (see copyTable). */
async function scale(
  target: Knex,
  def: TableDefinition,
  have: number,
  want: number,
): Promise<{ total: number; note: string | null }> {
  if (want <= have) return { total: have, note: null };
  if (have === 0) return { total: 0, note: 'the sample is empty: nothing to scale' };
  const t = qualify(def.table.schema, def.table.name);
  const key = def.primaryKey.length === 1 ? def.primaryKey[0]! : null;
  const keyType = key
    ? ((
        await target.raw(
          `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = ?::regclass AND attname = ?`,
          [t, key],
        )
      ).rows[0]?.t as string)
    : null;
  const limit = { smallint: 32_767, integer: 2_147_483_647, bigint: Number.MAX_SAFE_INTEGER }[keyType ?? ''] ?? null;
  if (!key || limit === null)
    return {
      total: have,
      note: `not scaled past the sample: the primary key is not one integer column (it is ${def.primaryKey.join(', ') || 'missing'})`,
    };
  if (def.otherUniqueKeys > 0)
    return {
      total: have,
      note: `not scaled past the sample: ${def.otherUniqueKeys} unique key(s) besides the primary key would collide`,
    };
  let total = have;
  const list = def.insertColumns.map(quoteIdent);
  const k = quoteIdent(key);
  while (total < want) {
    const { rows } = await target.raw(`SELECT min(${k})::float8 AS lo, max(${k})::float8 AS hi FROM ${t}`);
    const { lo, hi } = rows[0] as { lo: number; hi: number };
    const shift = hi - lo + 1;
    if (hi + shift > limit) return { total, note: `stopped at ${total} rows: shifted keys would overflow ${keyType}` };
    const take = Math.min(total, want - total);
    const select = def.insertColumns.map((c) => (c === key ? `${k} + ${shift}` : quoteIdent(c)));
    const r = await target.raw(
      `INSERT INTO ${t} (${list.join(', ')}) OVERRIDING SYSTEM VALUE SELECT ${select.join(', ')} FROM ${t} ORDER BY ${k} LIMIT ?`,
      [take],
    );
    total += r.rowCount ?? 0;
  }
  return { total, note: null };
}
