import { ValidationError, type Migration } from '@phaseflag/core';
import { resolveMigration } from '../catalog/resolve.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import type { ExecutorContext } from '../context.js';
import { OWN_DDL_MARK } from '../store/ddl-watch-sql.js';
import { LATEST_SCHEMA_VERSION } from '../store/schema.js';
import {
  clearCreatedNewColumnSql,
  createdNewColumnSql,
  doBlock,
  markCreatedNewColumnSql,
  migrationPhaseSql,
  phaseGuardSql,
  raise,
  recordTransitionSql,
  registerMigrationSql,
  storeVersionGuardSql,
  type RecordingTarget,
} from '../store/recording-sql.js';
import { regclassText, sqlLiteral } from '../sql/text.js';
import { lockTimeoutFor, type PlannedStatement } from './planned-statement.js';
import { addCheckStatement, dropCheckStatement, validateCheckStatement } from './steps/add-check.js';
import { addColumnStatement } from './steps/add-column.js';
import { createIndexStatement, dropIndexStatement } from './steps/create-index.js';
import { dropColumnStatement } from './steps/drop-column.js';

/**
 * The expand step of a migration as SQL files for a team's own migration tool (Flyway, golang-migrate, sqitch,
 * psql): the exact statements of the plan (the same builders `plan()` and `expand()` use), `lock_timeout` around
 * them, each guarded by the catalog so that a file run again, or after a controller did the step, changes nothing,
 * and the state store's record of the step (recording-sql.ts), so the controller continues from `expanded`. Their
 * DDL is marked as phaseflag's own (MARK), so the DDL watch does not record it and `phaseflag drift` stays quiet.
 */
export interface SqlMigrationPart {
  /** `expand` (column, check NOT VALID), `expand-index` (CONCURRENTLY, alone), `expand-record` (validate, record). */
  readonly name: 'expand' | 'expand-index' | 'expand-record';
  readonly summary: string;
  readonly up: string;
  /** Undoes the part; run in reverse order (the record part's down moves the phase to rolled-back first). */
  readonly down: string;
  /** false: one statement that must run outside a transaction block (a file of its own). */
  readonly transactional: boolean;
  /**
   * Not transactional: the statement by itself, for a tool that sends a whole file as one query (golang-migrate),
   * in which CONCURRENTLY must be the only statement. `up` and `down` wrap it in the mark, for a tool that runs a
   * file statement by statement (Flyway, sqitch, psql).
   */
  readonly alone?: { readonly up: string; readonly down: string };
}

export interface SqlMigration {
  readonly migrationId: string;
  readonly stateSchema: string;
  /** The state store version the recording statements were written for (the files refuse any other). */
  readonly stateSchemaVersion: number;
  /** In the order they run up. */
  readonly parts: readonly SqlMigrationPart[];
}

/** Who the state store's rows name when a generated SQL file made the change. */
export const SQL_FILE_ACTOR = 'phaseflag-generate:sql';

/** Resolves the migration against the live catalog (read only, as `plan()` does) and writes its expand files. */
export async function generateSqlMigration(ctx: ExecutorContext, migration: Migration): Promise<SqlMigration> {
  const r = await resolveMigration(ctx.knex, migration, { stateSchema: ctx.stateSchema });
  if (r.partitions) {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `Migration "${migration.id}" is on a partitioned table; its index is built partition by partition and attached, which plain SQL files cannot resume safely.`,
      {
        value: { migrationId: migration.id, format: 'sql' },
        migrationId: migration.id,
        hint: 'Generate knex files (--format knex), which call the engine, or let the controller expand it.',
      },
    );
  }
  const t: RecordingTarget = { stateSchema: ctx.stateSchema, migrationId: migration.id, actor: SQL_FILE_ACTOR };
  const index = migration.newColumn.index;
  const concurrent = index ? { up: createIndexStatement(r, index).sql, down: dropIndexStatement(r, index).sql } : null;
  return {
    migrationId: migration.id,
    stateSchema: ctx.stateSchema,
    stateSchemaVersion: LATEST_SCHEMA_VERSION,
    parts: [
      expandPart(r, t, concurrent !== null),
      ...(index && concurrent
        ? [
            {
              name: 'expand-index' as const,
              summary: `build index "${index.name}" CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on); outside a transaction, so alone in its file`,
              up: onSession(concurrent.up),
              down: onSession(concurrent.down),
              transactional: false,
              alone: { up: `${concurrent.up};\n`, down: `${concurrent.down};\n` },
            },
          ]
        : []),
      recordPart(r, t, concurrent !== null),
    ],
  };
}

/**
 * Marks the files' DDL as phaseflag's own for the DDL watch (store/ddl-watch-sql.ts), as operations/ddl.ts marks
 * the engine's:
 * - a transactional file sets it LOCAL first, so the mark ends with the file's transaction; each guarded DDL
 *   statement sets it again in its own block (`inBlock`), for a file run statement by statement outside a
 *   transaction (sqitch, psql without --single-transaction), where SET LOCAL does nothing;
 * - the CONCURRENTLY statement runs outside a transaction: SET on the session before it, RESET after (onSession).
 *   golang-migrate sends a file as one query, in which CONCURRENTLY must stand alone (`alone`): there the file
 *   before it sets the mark on the session as its last statement and the file after resets it as its first
 *   (golang-migrate runs them on one connection; the mark ends with the session at the latest).
 */
const MARK = {
  transaction: `SET LOCAL ${OWN_DDL_MARK.name} = ${sqlLiteral(OWN_DDL_MARK.value)};`,
  session: `SET ${OWN_DDL_MARK.name} = ${sqlLiteral(OWN_DDL_MARK.value)};`,
  reset: `RESET ${OWN_DDL_MARK.name};`,
  inBlock: `PERFORM pg_catalog.set_config(${sqlLiteral(OWN_DDL_MARK.name)}, ${sqlLiteral(OWN_DDL_MARK.value)}, true);`,
};

/** A statement that runs outside a transaction, marked on the session and the mark reset right after. */
function onSession(sql: string): string {
  return `${MARK.session}\n${sql};\n${MARK.reset}\n`;
}

/** The first statements of a transactional file: a mark a CONCURRENTLY file before left on the session goes. */
function markTransaction(afterConcurrent: boolean): string[] {
  return afterConcurrent ? [MARK.reset, MARK.transaction] : [MARK.transaction];
}

/** The last statement of a transactional file a CONCURRENTLY file follows: the mark, on the session (see MARK). */
function markForConcurrent(beforeConcurrent: boolean): string[] {
  return beforeConcurrent ? [MARK.session] : [];
}

function lockTimeout(ms: number): string {
  return `SET lock_timeout = '${ms}ms';`;
}

/** Runs a statement of the plan only while `condition` (SQL) holds: a guarded rerun takes no lock at all. */
function executeIf(condition: string, stmt: PlannedStatement): string {
  return doBlock(`BEGIN
  IF ${condition} THEN
    ${MARK.inBlock}
    EXECUTE ${sqlLiteral(stmt.sql)};
  END IF;
END`);
}

function relation(r: ResolvedMigration): string {
  return `to_regclass(${sqlLiteral(regclassText(r.schema, r.table))})`;
}

function columnExists(r: ResolvedMigration): string {
  return `EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = ${relation(r)} AND attname = ${sqlLiteral(r.migration.newColumn.name)} AND attnum > 0 AND NOT attisdropped)`;
}

function constraintExists(r: ResolvedMigration, name: string, extra = ''): string {
  return `EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conrelid = ${relation(r)} AND conname = ${sqlLiteral(name)}${extra})`;
}

function expandPart(r: ResolvedMigration, t: RecordingTarget, concurrent: boolean): SqlMigrationPart {
  const m = r.migration;
  const check = m.newColumn.check;
  const up = [
    ...markTransaction(false),
    storeVersionGuardSql(t.stateSchema),
    registerMigrationSql(t, {
      table_schema: r.schema,
      table_name: r.table,
      old_column: m.oldColumn,
      new_column: m.newColumn.name,
      definition: m as unknown as Record<string, unknown>,
    }),
    markCreatedNewColumnSql(t, { schema: r.schema, table: r.table, name: m.newColumn.name }),
    lockTimeout(m.ddl.lockTimeoutMs),
    executeIf(`NOT ${columnExists(r)}`, addColumnStatement(r)),
    ...(check ? [executeIf(`NOT ${constraintExists(r, check.name)}`, addCheckStatement(r, check))] : []),
    'RESET lock_timeout;',
    ...markForConcurrent(concurrent),
  ];
  const down = [
    ...markTransaction(concurrent),
    storeVersionGuardSql(t.stateSchema),
    phaseGuardSql(
      t,
      ['pending', 'rolled-back'],
      'the expand files are undone only after their record part (run the downs in reverse order)',
      `Run the down of the expand-record file first, or roll back with: npx phaseflag rollback ${m.id}`,
    ),
    lockTimeout(m.ddl.lockTimeoutMs),
    executeIf(`${createdNewColumnSql(t)} AND ${columnExists(r)}`, dropColumnStatement(r, 'new')),
    clearCreatedNewColumnSql(t),
    'RESET lock_timeout;',
  ];
  return {
    name: 'expand',
    summary: `add nullable column "${m.newColumn.name}" ${r.newColumnType}${check ? ` and check "${check.name}" NOT VALID` : ''} (ACCESS EXCLUSIVE, catalog only, ≤ lock_timeout ${m.ddl.lockTimeoutMs} ms); register the migration`,
    up: `${up.join('\n')}\n`,
    down: `${down.join('\n')}\n`,
    transactional: true,
  };
}

/** Validates the check, proves the catalog holds what expand makes, and records `expanded`. */
function recordPart(r: ResolvedMigration, t: RecordingTarget, concurrent: boolean): SqlMigrationPart {
  const m = r.migration;
  const check = m.newColumn.check;
  const index = m.newColumn.index;
  const missing = [
    `IF NOT ${columnExists(r)} OR column_type IS DISTINCT FROM ${sqlLiteral(r.newColumnType)} THEN
      ${raise(`'phaseflag: column "' || ${sqlLiteral(m.newColumn.name)} || '" is ' || coalesce(column_type, 'missing') || ', not ' || ${sqlLiteral(r.newColumnType)}`, `'Run the expand file first; if the column was made by hand with another type, drop or rename it.'`)}
    END IF;`,
    ...(index
      ? [
          `IF NOT EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = ${relation(r)} AND c.relname = ${sqlLiteral(index.name)} AND i.indisvalid) THEN
      ${raise(`'phaseflag: index "' || ${sqlLiteral(index.name)} || '" is missing or INVALID (a concurrent build was interrupted)'`, sqlLiteral(`Drop it (${dropIndexStatement(r, index).sql}) and run the expand-index file again.`))}
    END IF;`,
        ]
      : []),
    ...(check
      ? [
          `IF NOT ${constraintExists(r, check.name, ' AND convalidated')} THEN
      ${raise(`'phaseflag: check "' || ${sqlLiteral(check.name)} || '" is missing or not validated'`, `'Run the expand file first; a row violating the check makes VALIDATE fail: fix it and run this file again.'`)}
    END IF;`,
        ]
      : []),
  ];
  const proof = doBlock(`DECLARE
  p text := ${migrationPhaseSql(t)};
  column_type text;
  saved_path text := current_setting('search_path');
BEGIN
  IF p IS NULL THEN
    ${raise(`'phaseflag: migration "' || ${sqlLiteral(m.id)} || '" is not in the state store'`, `'Run the expand file first: it registers the migration.'`)}
  END IF;
  IF p IN ('pending', 'rolled-back') THEN
    -- format_type spells types as the plan does only with pg_catalog alone on the path.
    PERFORM set_config('search_path', 'pg_catalog', true);
    SELECT format_type(atttypid, atttypmod) INTO column_type FROM pg_catalog.pg_attribute
      WHERE attrelid = ${relation(r)} AND attname = ${sqlLiteral(m.newColumn.name)} AND attnum > 0 AND NOT attisdropped;
    PERFORM set_config('search_path', saved_path, true);
    ${missing.join('\n    ')}
  END IF;
END`);
  const up = [
    ...markTransaction(concurrent),
    storeVersionGuardSql(t.stateSchema),
    ...(check
      ? [
          lockTimeout(lockTimeoutFor('SHARE UPDATE EXCLUSIVE', m.ddl)),
          executeIf(constraintExists(r, check.name, ' AND NOT convalidated'), validateCheckStatement(r, check.name)),
          'RESET lock_timeout;',
        ]
      : []),
    proof,
    recordTransitionSql(t, {
      from: ['pending', 'rolled-back'],
      to: 'expanded',
      action: 'expand',
      detail: { via: 'sql-file', part: 'expand-record' },
    }),
  ];
  const down = [
    ...markTransaction(false),
    storeVersionGuardSql(t.stateSchema),
    phaseGuardSql(
      t,
      ['pending', 'expanded', 'rolled-back'],
      'these files undo expand only; the migration has moved on since',
      `Roll it back with the engine, which undoes every later step too: npx phaseflag rollback ${m.id}`,
    ),
    recordTransitionSql(t, {
      from: ['expanded'],
      to: 'rolled-back',
      action: 'rollback',
      detail: { via: 'sql-file', part: 'expand-record' },
      rollbackResets: true,
    }),
    ...(check
      ? [
          lockTimeout(m.ddl.lockTimeoutMs),
          executeIf(constraintExists(r, check.name), dropCheckStatement(r, check.name)),
          'RESET lock_timeout;',
        ]
      : []),
    ...markForConcurrent(concurrent),
  ];
  return {
    name: 'expand-record',
    summary: `${check ? `validate check "${check.name}" (SHARE UPDATE EXCLUSIVE: reads and writes go on), ` : ''}check the catalog and record the phase expanded (event and NOTIFY) in the state store`,
    up: `${up.join('\n')}\n`,
    down: `${down.join('\n')}\n`,
    transactional: true,
  };
}
