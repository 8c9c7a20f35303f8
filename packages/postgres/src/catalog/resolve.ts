import {
  CatalogError,
  ConflictError,
  LockTimeoutError,
  quoteIdent,
  ValidationError,
  type Migration,
} from '@phaseflag/core';
import type { Knex } from 'knex';
import { probeOldColumnDefault } from './default.js';
import {
  analyseCheck,
  analyseExpression,
  copyName,
  isLockTimeout,
  probeName,
  type Fail,
  type ProbeSite,
} from './probe.js';
import { readConstraint, readIndexState } from './state.js';
import { probeThrottleQuery, throttleStatement } from '../operations/backfill/throttle-query.js';
import { pgError } from '../sql/pg-error.js';
import type { ColumnInfo, ResolvedMigration } from './resolved.js';
import { expressionShapeProblem, qualify } from '../sql/text.js';
import { readDroppedOldColumn, type DroppedOldColumn } from '../store/dropped-column.js';

export interface ResolveOptions {
  /**
   * The state schema to consult when the declared old column is missing: a migration that is `contracted` with
   * the drop recorded there resolves without it. Without a state schema a missing old column is always refused.
   */
  stateSchema?: string;
}

/**
 * Checks a migration against the live catalog without changing anything: the table and its primary key, the
 * columns it names, the declared type and default, and the expressions (parsed and analysed by Postgres, never
 * evaluated over the table's rows). Everything runs in one transaction that is always rolled back, so a refusal
 * (or a success) leaves no trace: no column, no temporary object, no catalog change.
 */
export async function resolveMigration(
  knex: Knex,
  migration: Migration,
  options: ResolveOptions = {},
): Promise<ResolvedMigration> {
  const fail: Fail = (code, message, value, hint) => {
    throw new CatalogError(code, message, { value, hint, migrationId: migration.id });
  };
  const expressions: [string, string | null][] = [
    ['backfill', migration.backfill],
    ['reverse', migration.reverse],
    ['check', migration.newColumn.check?.expression ?? null],
  ];
  for (const [what, expression] of expressions) {
    const problem = expression === null ? null : expressionShapeProblem(expression);
    if (problem !== null) {
      fail(
        'PF_INVALID_EXPRESSION',
        `The ${what} expression of "${migration.id}" is not one SQL expression: ${problem}.`,
        expression,
        'Give a single expression over the row\'s columns, e.g. "round(amount * 100)::bigint"; statements and unbalanced parentheses are refused.',
      );
    }
  }
  if (migration.throttle.query !== null) throttleStatement(migration.throttle.query, migration.id);
  try {
    return await inRolledBackTransaction(knex, (trx) => resolveIn(trx, migration, fail, options));
  } catch (e) {
    if (!isLockTimeout(e)) throw e;
    throw new LockTimeoutError(
      `Reading the catalog for "${migration.id}" waited longer than lock_timeout (${migration.ddl.lockTimeoutMs} ms) for a lock on its table.`,
      {
        attempts: 1,
        value: migration.table,
        migrationId: migration.id,
        cause: e,
        hint: 'Another session holds an exclusive lock on the table (a DDL or LOCK TABLE in a long transaction): let it finish, then plan again.',
      },
    );
  }
}

/** knex treats rollback() without an error as a failed transaction, so the probe leaves by throwing this instead. */
class RolledBack extends Error {
  constructor(readonly value: unknown) {
    super('phaseflag: probe transaction rolled back on purpose');
  }
}

export async function inRolledBackTransaction<T>(knex: Knex, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  try {
    await knex.transaction(async (trx) => {
      throw new RolledBack(await work(trx));
    });
  } catch (e) {
    if (e instanceof RolledBack) return e.value as T;
    throw e;
  }
  throw new Error('unreachable: the probe transaction committed');
}

interface RawColumn {
  name: string;
  typid: number;
  typmod: number;
  notNull: boolean;
}

async function resolveIn(
  trx: Knex.Transaction,
  migration: Migration,
  fail: Fail,
  options: ResolveOptions,
): Promise<ResolvedMigration> {
  // The probes only read the catalog and touch temporary objects; lock_timeout bounds the one wait they can meet
  // (the ACCESS SHARE lock LIKE takes on the table, queued behind somebody's ALTER TABLE).
  const session = (
    await trx.raw(
      `SELECT set_config('lock_timeout', ?, true), set_config('statement_timeout', '30s', true),
            current_setting('search_path') AS "searchPath", current_schemas(false)::text[] AS "schemas", current_schema() AS "currentSchema",
            current_setting('server_version_num')::int AS "serverVersion"`,
      [`${migration.ddl.lockTimeoutMs}ms`],
    )
  ).rows[0] as { searchPath: string; schemas: string[]; currentSchema: string | null; serverVersion: number };
  const name = migration.table.name;
  const schema = migration.table.schema ?? session.currentSchema;
  if (schema === null) {
    return fail(
      'PF_UNKNOWN_TABLE',
      `Table "${name}" names no schema and the connection's search_path has none that exists.`,
      name,
      'Name the table as "schema.table", or set the connection\'s search_path.',
    );
  }
  const where = `${schema}.${name}`;
  const rel = (
    await trx.raw(
      `SELECT c.oid::int AS oid, c.relkind, c.relpersistence, c.reltuples::bigint AS estimate
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?`,
      [schema, name],
    )
  ).rows[0] as { oid: number; relkind: string; relpersistence: string; estimate: string } | undefined;
  if (!rel)
    return fail(
      'PF_UNKNOWN_TABLE',
      `Table ${where} does not exist.`,
      where,
      "Check the table name and schema (or the connection's search_path).",
    );
  if (rel.relkind !== 'r' && rel.relkind !== 'p')
    return fail(
      'PF_UNKNOWN_TABLE',
      `${where} is not a table (relkind ${rel.relkind}).`,
      where,
      'Migrate the underlying table, not a view or other relation.',
    );
  if (rel.relpersistence === 't')
    return fail(
      'PF_UNKNOWN_TABLE',
      `${where} is a temporary table.`,
      where,
      'Only a permanent table is visible to the other sessions a migration serves.',
    );

  if (rel.relkind === 'p' && migration.newColumn.index) {
    throw new ValidationError(
      'PF_INVALID_MIGRATION',
      `${where} is partitioned, and Postgres cannot build an index on a partitioned table CONCURRENTLY.`,
      {
        value: migration.newColumn.index,
        migrationId: migration.id,
        hint: 'Leave newColumn.index off and build the index per partition (CREATE INDEX CONCURRENTLY on each, then ALTER INDEX … ATTACH PARTITION).',
      },
    );
  }
  const raw = (
    await trx.raw(
      `SELECT a.attname AS name, a.atttypid::int AS typid, a.atttypmod AS typmod, a.attnotnull AS "notNull"
       FROM pg_attribute a WHERE a.attrelid = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [rel.oid],
    )
  ).rows as RawColumn[];
  const rawByName = new Map(raw.map((c) => [c.name, c]));

  const pk = (
    await trx.raw<{ rows: { name: string }[] }>(
      `SELECT a.attname AS name FROM pg_index i
       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = ? AND i.indisprimary ORDER BY k.ord`,
      [rel.oid],
    )
  ).rows.map((r) => r.name);
  if (pk.length === 0) {
    fail(
      'PF_NO_PRIMARY_KEY',
      `Table ${where} has no primary key.`,
      where,
      'Backfill walks the table by its primary key: add one (CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE … ADD PRIMARY KEY USING INDEX).',
    );
  }
  if (pk.join(',') !== migration.primaryKey.join(',')) {
    fail(
      'PF_NO_PRIMARY_KEY',
      `Migration "${migration.id}" declares primary key (${migration.primaryKey.join(', ')}) but ${where} has (${pk.join(', ')}).`,
      migration.primaryKey,
      `Declare primaryKey: ${JSON.stringify(pk.length === 1 ? pk[0] : pk)}.`,
    );
  }
  // Gone from the table is fine only once the store says contract dropped it; otherwise it is a mistake.
  let dropped: DroppedOldColumn | null = null;
  if (migration.oldColumn !== null && !rawByName.has(migration.oldColumn)) {
    dropped =
      options.stateSchema === undefined ? null : await readDroppedOldColumn(trx, options.stateSchema, migration);
    if (dropped === null) {
      fail(
        'PF_UNKNOWN_COLUMN',
        `Column "${migration.oldColumn}" does not exist in ${where}.`,
        migration.oldColumn,
        'Name an existing column as oldColumn, or set it to null for a brand-new column (a column dropped by contract is accepted once the state store records the drop).',
      );
    }
  }

  const declared = await probeType(trx, migration, fail);
  const existing = rawByName.get(migration.newColumn.name);
  if (existing && (existing.typid !== declared.typid || existing.typmod !== declared.typmod)) {
    const types = (
      await trx.raw('SELECT format_type(?, ?) AS e, format_type(?, ?) AS d', [
        existing.typid,
        existing.typmod,
        declared.typid,
        declared.typmod,
      ])
    ).rows[0];
    fail(
      'PF_COLUMN_TYPE_CONFLICT',
      `Column "${migration.newColumn.name}" already exists in ${where} as ${types.e}, not ${types.d}.`,
      { column: migration.newColumn.name, existing: types.e, declared: types.d },
      'Pick another name for the new column, or declare the type it already has.',
    );
  }
  // Types are spelled with only pg_catalog on the search_path, so format_type qualifies every other type and the
  // text means the same type in a session with another search_path (the DDL runner's, the trigger's).
  await trx.raw(`SELECT set_config('search_path', 'pg_catalog', true)`);
  const spelled = (
    await trx.raw<{ rows: { type: string }[] }>(
      'SELECT format_type(t, m) AS type FROM unnest(?::oid[], ?::int[]) WITH ORDINALITY AS u(t, m, o) ORDER BY o',
      [
        [...raw.map((c) => c.typid), declared.typid],
        [...raw.map((c) => c.typmod), declared.typmod],
      ],
    )
  ).rows.map((r) => r.type);
  await trx.raw(`SELECT set_config('search_path', ?, true)`, [session.searchPath]);
  const columns = new Map<string, ColumnInfo>(
    raw.map((c, i) => [c.name, { name: c.name, type: spelled[i]!, notNull: c.notNull }]),
  );
  if (dropped) columns.set(migration.oldColumn!, { name: migration.oldColumn!, type: dropped.type, notNull: false });
  const newColumnType = spelled[raw.length]!;
  const oldColumn = migration.oldColumn === null ? null : columns.get(migration.oldColumn)!;

  const defaultLiteral = await probeDefault(trx, migration, newColumnType, declared.typid, fail);

  // The empty copy of the row the expressions are analysed over (see catalog-probe.ts).
  // A dropped old column is put back into the copy with its recorded type: the expressions still name it.
  const copyColumns = [
    ...rawByName.keys(),
    ...(dropped ? [migration.oldColumn!] : []),
    ...(existing ? [] : [migration.newColumn.name]),
  ];
  const site: ProbeSite = {
    trx,
    migrationId: migration.id,
    table: name,
    columns: copyColumns,
    searchPath: session.searchPath,
    fail,
  };
  await trx.raw(`CREATE TEMP TABLE ${copyName(site)} (LIKE ${qualify(schema, name)})`);
  if (dropped)
    await trx.raw(`ALTER TABLE ${copyName(site)} ADD COLUMN ${quoteIdent(migration.oldColumn!)} ${dropped.type}`);
  if (!existing)
    await trx.raw(`ALTER TABLE ${copyName(site)} ADD COLUMN ${quoteIdent(migration.newColumn.name)} ${newColumnType}`);
  const none = { inputs: [], external: [] };
  const backfill =
    migration.backfill === null
      ? none
      : await analyseExpression(site, 'backfill', migration.backfill, migration.newColumn.name, newColumnType);
  const reverse =
    migration.reverse === null || oldColumn === null
      ? none
      : await analyseExpression(site, 'reverse', migration.reverse, oldColumn.name, oldColumn.type);
  if (migration.newColumn.check) await analyseCheck(site, migration.newColumn.check.expression);
  if (migration.throttle.query !== null) await probeThrottleQuery(trx, migration.throttle.query, migration.id);
  await refuseTakenNames(trx, migration, schema);
  const oldColumnDefault =
    oldColumn === null || dropped !== null
      ? null
      : await probeOldColumnDefault(trx, migration, rel.oid, oldColumn.type, newColumnType, backfill.inputs);

  return {
    migration,
    schema,
    table: name,
    primaryKey: pk.map((c) => columns.get(c)!),
    columns,
    oldColumn,
    oldColumnDropped: dropped !== null,
    newColumnType,
    newColumnExists: existing !== undefined,
    newColumnDefaultSql: defaultLiteral === null ? null : `${defaultLiteral}::${newColumnType}`,
    oldColumnDefault,
    backfillInputs: backfill.inputs,
    reverseInputs: reverse.inputs,
    expressionDependencies: [...new Set([...backfill.external, ...reverse.external])].sort(),
    searchPath: session.schemas,
    serverVersion: session.serverVersion,
    rowsEstimate: Number(rel.estimate) >= 0 ? Number(rel.estimate) : await plannerEstimate(trx, schema, name),
  };
}

/**
 * reltuples is -1 until the table is first vacuumed or analyzed (always for a partitioned parent): the planner's
 * own row estimate (relation size over tuple width, partitions included) stands in, with no scan of the rows.
 */
async function plannerEstimate(trx: Knex.Transaction, schema: string, name: string): Promise<number> {
  const rows = (await trx.raw('EXPLAIN (FORMAT JSON) SELECT 1 FROM ??.??', [schema, name])).rows as Array<{
    'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }>;
  }>;
  return Math.max(0, Math.round(rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'] ?? 0));
}

/**
 * to_regtype() accepts exactly one type name (it parses `SELECT NULL::<text>` and refuses anything more) and gives
 * NULL for unknown names, but ignores typmods; creating a one-column temporary table then applies the typmod rules
 * ("numeric(1001)" is refused) and gives the type's identity.
 */
async function probeType(
  trx: Knex.Transaction,
  migration: Migration,
  fail: Fail,
): Promise<{ typid: number; typmod: number }> {
  const type = migration.newColumn.type;
  const refuse = (why: string): never =>
    fail(
      'PF_UNKNOWN_TYPE',
      `Type "${type}" of "${migration.newColumn.name}" is not usable: ${why}.`,
      type,
      'Use a type the database knows, e.g. "numeric(12,2)", "text", "timestamptz" (create enums and domains beforehand).',
    );
  const sql = 'SELECT to_regtype(?) IS NOT NULL AS known';
  let known = false;
  try {
    known = (await trx.raw(sql, [type])).rows[0].known as boolean;
  } catch (e) {
    refuse(pgError(e, sql).message);
  }
  if (!known) refuse('the database has no type of that name');
  const table = probeName('pf_type_probe', migration.table.name);
  const create = `CREATE TEMP TABLE ${quoteIdent(table)} (v\n${type}\n)`;
  try {
    await trx.raw(create);
  } catch (e) {
    refuse(pgError(e, create).message);
  }
  const cols = (
    await trx.raw(
      'SELECT atttypid::int AS typid, atttypmod AS typmod FROM pg_attribute WHERE attrelid = ?::regclass AND attnum > 0',
      [`pg_temp.${quoteIdent(table)}`],
    )
  ).rows as { typid: number; typmod: number }[];
  if (cols.length !== 1) refuse('it does not name exactly one type');
  return cols[0]!;
}

/** The declared default, cast to the type by Postgres from a bound parameter and rendered back by quote_literal. */
async function probeDefault(
  trx: Knex.Transaction,
  migration: Migration,
  type: string,
  typid: number,
  fail: Fail,
): Promise<string | null> {
  const value = migration.newColumn.default;
  if (value === undefined || value === null) return null;
  const sent = `SELECT quote_literal(CAST(? AS ${type})::text) AS literal, (SELECT typcategory FROM pg_type WHERE oid = ?) AS category`;
  let row: { literal: string; category: string };
  try {
    row = (await trx.raw(sent, [typeof value === 'string' ? value : String(value), typid])).rows[0];
  } catch (e) {
    return fail(
      'PF_INVALID_EXPRESSION',
      `The default ${JSON.stringify(value)} of "${migration.newColumn.name}" is not a valid ${type}: ${pgError(e, sent).message}.`,
      value,
      `Give a constant of type ${type} (a string, number or boolean), or no default.`,
    );
  }
  // 'now', 'today', … are read once, here; as a default they would freeze plan time into every row.
  if (row.category === 'D' && typeof value === 'string' && /^\s*(now|today|tomorrow|yesterday)\s*$/i.test(value)) {
    fail(
      'PF_VOLATILE_EXPRESSION',
      `The default "${value}" of "${migration.newColumn.name}" would be evaluated once, at plan time.`,
      value,
      'A column default here must be a constant; leave it out and let the backfill or the application supply the time.',
    );
  }
  return row.literal;
}

/** An index or constraint of the declared name that is not ours would make `IF NOT EXISTS` skip silently. */
async function refuseTakenNames(trx: Knex.Transaction, migration: Migration, schema: string): Promise<void> {
  const { index, check, name: column } = migration.newColumn;
  if (index) {
    const state = await readIndexState(trx, schema, migration.table.name, index.name, column, index.unique);
    if (state.kind === 'foreign') {
      throw new ConflictError(
        'PF_MIGRATION_CONFLICT',
        `The index name of "${migration.id}" is taken: ${state.detail}.`,
        {
          value: index.name,
          migrationId: migration.id,
          hint: 'Name the index explicitly (newColumn.index.name) with a name not used in the schema.',
        },
      );
    }
  }
  if (check) {
    const state = await readConstraint(trx, schema, migration.table.name, check.name);
    if (state.kind === 'foreign') {
      throw new ConflictError(
        'PF_MIGRATION_CONFLICT',
        `The check constraint name of "${migration.id}" is taken: ${state.detail}.`,
        {
          value: check.name,
          migrationId: migration.id,
          hint: 'Name the check explicitly (newColumn.check.name) with a name not used on the table.',
        },
      );
    }
  }
}
