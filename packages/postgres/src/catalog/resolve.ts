import { CatalogError, LockTimeoutError, quoteIdent, ValidationError, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';
import { probeThrottleQuery, throttleStatement } from './throttle-query.js';
import { expressionShapeProblem, qualify } from '../sql/text.js';
import { readDroppedOldColumn, type DroppedOldColumn } from '../store/dropped-column.js';
import { probeDefault, probeType, refuseTakenNames } from './declared.js';
import { probeOldColumnDefault } from './default.js';
import { analyseCheck, analyseExpression } from './probe.js';
import { copyName, inRolledBackTransaction, isLockTimeout, type Fail, type ProbeSite } from './probe-site.js';
import type { ColumnInfo, ResolvedMigration } from './resolved.js';
import { resolveReference } from './foreign-key.js';
import { readPartitionKey, readPartitions } from './partitions.js';
import { findTable, plannerEstimate, readColumns, readRowKeys } from './table.js';

export interface ResolveOptions {
  /**
   * The state schema to consult when the declared old column is missing: a migration that is `contracted` with
   * the drop recorded there resolves without it. Without a state schema a missing old column is always refused.
   */
  stateSchema?: string;
}

/**
 * Checks a migration against the live catalog without changing anything: the table and the key its rows are walked by, the
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
  const rel = await findTable(trx, schema, name, fail);

  const partitions = rel.relkind === 'p' ? await readPartitions(trx, schema, name) : undefined;
  if (rel.relkind === 'p' && migration.newColumn.index && migration.newColumn.index.unique) {
    const partitionKey = await readPartitionKey(trx, rel.oid);
    if (partitionKey.some((c) => c !== migration.newColumn.name)) {
      throw new ValidationError(
        'PF_INVALID_MIGRATION',
        `${where} is partitioned by (${partitionKey.map((c) => c ?? '<expression>').join(', ')}): a UNIQUE index on "${migration.newColumn.name}" alone cannot include the partition key, and Postgres enforces uniqueness on a partitioned table only with it.`,
        {
          value: migration.newColumn.index,
          migrationId: migration.id,
          hint: 'Declare index: true (not unique), or build a unique index that includes the partition key yourself.',
        },
      );
    }
  }
  const references = await resolveReference(trx, migration, schema, rel.relkind === 'p', fail);
  const raw = await readColumns(trx, rel.oid);
  const rawByName = new Map(raw.map((c) => [c.name, c]));

  const keys = await readRowKeys(trx, rel.oid);
  const key = keys[0];
  if (key === undefined) {
    return fail(
      'PF_NO_PRIMARY_KEY',
      `Table ${where} has neither a primary key nor a unique key on NOT NULL columns.`,
      where,
      'Backfill, verify and row lookups walk the table by a key: add a primary key (CREATE UNIQUE INDEX CONCURRENTLY, then ALTER TABLE … ADD PRIMARY KEY USING INDEX) or a unique not-null key (not partial, not on expressions).',
    );
  }
  const pk = key.columns;
  if (pk.join(',') !== migration.primaryKey.join(',')) {
    const others = keys.slice(1).map((k) => `${k.kind} "${k.name}" (${k.columns.join(', ')})`);
    fail(
      'PF_NO_PRIMARY_KEY',
      `Migration "${migration.id}" declares key (${migration.primaryKey.join(', ')}) but ${where} is walked by its ${key.kind} "${key.name}" (${pk.join(', ')})${others.length > 0 ? `, chosen before ${others.join(', ')}` : ''}.`,
      migration.primaryKey,
      `Declare primaryKey: ${JSON.stringify(pk.length === 1 ? pk[0] : pk)} (the primary key, else the unique not-null key with the fewest columns, a constraint before a bare index, then by name).`,
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

  // The empty copy of the row the expressions are analysed over (see probe.ts).
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
    rowKey: { kind: key.kind, name: key.name },
    ...(partitions ? { partitions } : {}),
    ...(references ? { references } : {}),
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
