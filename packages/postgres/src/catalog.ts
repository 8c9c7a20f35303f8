import { CatalogError, quoteIdent, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ColumnInfo, ResolvedMigration } from './resolved.js';

/**
 * Checks a migration against the live catalog without changing anything: the table and its primary key, the
 * columns it names, the declared type, and the expressions (parsed and analysed by Postgres inside a
 * transaction that is always rolled back, never run over the table's rows).
 */
export async function resolveMigration(knex: Knex, migration: Migration): Promise<ResolvedMigration> {
  const fail = (code: ConstructorParameters<typeof CatalogError>[0], message: string, value: unknown, hint: string): never => {
    throw new CatalogError(code, message, { value, hint, migrationId: migration.id });
  };
  const schema: string = migration.table.schema ?? (await knex.raw('SELECT current_schema() AS s')).rows[0].s;
  const rel = (await knex.raw(
    `SELECT c.oid::int AS oid, c.relkind, greatest(c.reltuples, 0)::bigint AS estimate
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ? AND c.relname = ?`,
    [schema, migration.table.name],
  )).rows[0] as { oid: number; relkind: string; estimate: string } | undefined;
  if (!rel) fail('PF_UNKNOWN_TABLE', `Table ${schema}.${migration.table.name} does not exist.`, `${schema}.${migration.table.name}`, 'Check the table name and schema (or the connection\'s search_path).');
  if (rel!.relkind !== 'r' && rel!.relkind !== 'p') {
    fail('PF_UNKNOWN_TABLE', `${schema}.${migration.table.name} is not a table.`, migration.table, 'Migrate the underlying table, not a view.');
  }
  const cols = (await knex.raw(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
       FROM pg_attribute a WHERE a.attrelid = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [rel!.oid],
  )).rows as ColumnInfo[];
  const columns = new Map(cols.map((c) => [c.name, c]));

  const pkCols = (await knex.raw(
    `SELECT a.attname AS name FROM pg_index i
       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = ? AND i.indisprimary ORDER BY k.ord`,
    [rel!.oid],
  )).rows.map((r: { name: string }) => r.name) as string[];
  if (pkCols.length === 0) {
    fail('PF_NO_PRIMARY_KEY', `Table ${schema}.${migration.table.name} has no primary key.`, migration.table,
      'Backfill walks the table by its primary key: add one (CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE … ADD PRIMARY KEY USING INDEX).');
  }
  if (pkCols.join(',') !== migration.primaryKey.join(',')) {
    fail('PF_NO_PRIMARY_KEY', `Migration "${migration.id}" declares primary key (${migration.primaryKey.join(', ')}) but the table's is (${pkCols.join(', ')}).`,
      migration.primaryKey, `Declare primaryKey: ${JSON.stringify(pkCols.length === 1 ? pkCols[0] : pkCols)}.`);
  }
  const primaryKey = pkCols.map((c) => columns.get(c)!);

  let oldColumn: ColumnInfo | null = null;
  if (migration.oldColumn !== null) {
    oldColumn = columns.get(migration.oldColumn) ?? null;
    if (!oldColumn) fail('PF_UNKNOWN_COLUMN', `Column "${migration.oldColumn}" does not exist in ${schema}.${migration.table.name}.`, migration.oldColumn, 'Name an existing column as oldColumn, or set it to null for a brand-new column.');
  }

  const newColumnType = await normalizeType(knex, migration, fail);
  const existing = columns.get(migration.newColumn.name);
  if (existing && existing.type !== newColumnType) {
    fail('PF_COLUMN_TYPE_CONFLICT', `Column "${migration.newColumn.name}" already exists as ${existing.type}, not ${newColumnType}.`,
      { column: migration.newColumn.name, existing: existing.type, declared: newColumnType },
      'Pick another name for the new column, or declare the type it already has.');
  }

  const backfillInputs = migration.backfill === null ? []
    : await analyseExpression(knex, migration, schema, migration.backfill, 'backfill', newColumnType, fail);
  const reverseInputs = migration.reverse === null || oldColumn === null ? []
    : await analyseExpression(knex, migration, schema, migration.reverse, 'reverse', oldColumn.type, fail, true);

  return {
    migration,
    schema,
    table: migration.table.name,
    primaryKey,
    columns,
    oldColumn,
    newColumnType,
    newColumnExists: existing !== undefined,
    backfillInputs,
    reverseInputs,
    rowsEstimate: Number(rel!.estimate),
  };
}

type Fail = (code: ConstructorParameters<typeof CatalogError>[0], message: string, value: unknown, hint: string) => never;

async function normalizeType(knex: Knex, migration: Migration, fail: Fail): Promise<string> {
  try {
    // to_regtype() ignores typmods and returns NULL for unknown names; a cast of NULL to the type parses it
    // fully (typmods included) without touching any data.
    const known = (await knex.raw('SELECT to_regtype(?) IS NOT NULL AS ok', [migration.newColumn.type])).rows[0].ok as boolean;
    if (!known) throw new Error('unknown');
    return await knex.transaction(async (trx) => {
      await trx.raw(`CREATE TEMP TABLE pf_type_probe (v ${migration.newColumn.type}) ON COMMIT DROP`);
      const t = (await trx.raw(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'pf_type_probe'::regclass AND attname = 'v'`)).rows[0].t as string;
      await trx.rollback();
      return t;
    }).catch((e) => {
      if (e instanceof Error && e.message === 'Transaction rejected with non-error: undefined') throw e;
      throw e;
    });
  } catch (e) {
    if (e instanceof CatalogError) throw e;
    return fail('PF_UNKNOWN_TYPE', `Unknown Postgres type "${migration.newColumn.type}".`, migration.newColumn.type,
      'Use a type the database knows, e.g. "numeric(12,2)", "text", "timestamptz" (create enums and domains beforehand).');
  }
}

/**
 * Parses and analyses an expression by creating a throw-away view over the table inside a transaction that is
 * rolled back: Postgres resolves every name and type and records in pg_depend which columns and functions it
 * reads. Nothing is evaluated. Volatile functions and subqueries are refused: a backfill must give the same value
 * when the trigger, the router and verify compute it again.
 */
async function analyseExpression(
  knex: Knex, migration: Migration, schema: string, expression: string, what: 'backfill' | 'reverse', targetType: string, fail: Fail, reverseSide = false,
): Promise<string[]> {
  const view = 'pf_expr_probe';
  const table = `${quoteIdent(schema)}.${quoteIdent(migration.table.name)}`;
  let result: { inputs: string[]; volatile: string[]; subquery: boolean } | undefined;
  try {
    await knex.transaction(async (trx) => {
      // When the new column does not exist yet the expression cannot reference it; reverse expressions may, so
      // the probe adds it to a temporary copy of the row type only when needed.
      const source = reverseSide ? `(SELECT t.*, NULL::${targetType === '' ? 'text' : migration.newColumn.type} AS ${quoteIdent(migration.newColumn.name)} FROM ${table} t) AS t` : `${table} AS t`;
      await trx.raw(`CREATE TEMP VIEW ${view} AS SELECT (${expression})::${targetType} AS v FROM ${source}`);
      const deps = (await trx.raw(
        `SELECT DISTINCT a.attname AS name FROM pg_depend d
           JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
           JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          WHERE r.ev_class = ?::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ?::regclass AND d.refobjsubid > 0`,
        [view, `${quoteIdent(schema)}.${quoteIdent(migration.table.name)}`],
      )).rows.map((r: { name: string }) => r.name) as string[];
      const volatile = (await trx.raw(
        `SELECT DISTINCT p.proname AS name FROM pg_depend d
           JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
           JOIN pg_proc p ON p.oid = d.refobjid AND d.refclassid = 'pg_proc'::regclass
          WHERE r.ev_class = ?::regclass AND p.provolatile = 'v'
         UNION
         SELECT DISTINCT p.proname FROM pg_depend d
           JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
           JOIN pg_operator o ON o.oid = d.refobjid AND d.refclassid = 'pg_operator'::regclass
           JOIN pg_proc p ON p.oid = o.oprcode
          WHERE r.ev_class = ?::regclass AND p.provolatile = 'v'`,
        [view, view],
      )).rows.map((r: { name: string }) => r.name) as string[];
      const plan = (await trx.raw(`EXPLAIN (COSTS OFF) SELECT v FROM ${view}`)).rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n') as string;
      const subquery = /SubPlan|InitPlan/.test(plan) || ((await trx.raw('SELECT count(*)::int AS n FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = \'pg_rewrite\'::regclass WHERE r.ev_class = ?::regclass AND d.refclassid = \'pg_class\'::regclass AND d.refobjid NOT IN (?::regclass, ?::regclass)', [view, view, `${quoteIdent(schema)}.${quoteIdent(migration.table.name)}`])).rows[0].n > 0);
      result = { inputs: deps, volatile, subquery };
      await trx.rollback();
    });
  } catch (e) {
    if (result === undefined) {
      const message = e instanceof Error ? e.message : String(e);
      return fail('PF_INVALID_EXPRESSION', `The ${what} expression of "${migration.id}" is rejected by Postgres: ${message}.`, expression,
        `Write a SQL expression over the columns of ${migration.table.name} that yields ${targetType}, e.g. "lower(email)".`);
    }
  }
  const r = result!;
  if (r.volatile.length > 0) {
    fail('PF_VOLATILE_EXPRESSION', `The ${what} expression of "${migration.id}" calls volatile function(s) ${r.volatile.join(', ')}.`, expression,
      'A volatile value differs each time it is computed, so backfill, trigger and verify would disagree: use a stable expression over the row.');
  }
  if (r.subquery) {
    fail('PF_SUBQUERY_EXPRESSION', `The ${what} expression of "${migration.id}" holds a subquery.`, expression,
      'A subquery reads other rows or tables, which can change under the backfill: derive the value from the row alone.');
  }
  return r.inputs.filter((c) => !(reverseSide && c === migration.newColumn.name)).length > 0 || !reverseSide ? r.inputs : r.inputs;
}
