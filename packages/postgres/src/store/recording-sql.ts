import { quoteIdent, type Phase } from '@phaseflag/core';
import { LATEST_SCHEMA_VERSION } from './schema.js';
import { notifyChannel } from './state-store.js';
import { dollarTag, regclassText, sqlLiteral } from '../sql/text.js';

/**
 * The state store's rows as SQL text, for migration files that a team's own tool runs (Flyway, golang-migrate,
 * sqitch, psql): the same rows, event and NOTIFY that PostgresStateStore writes, so a controller continues from
 * what such a file did, and such a file skips what a controller did. The knowledge of the store's tables stays
 * here; the version these statements are written for is LATEST_SCHEMA_VERSION, and the files refuse to run against
 * a store at any other version (storeVersionGuardSql).
 */

export interface RecordingTarget {
  readonly stateSchema: string;
  readonly migrationId: string;
  /** Who the rows name (`migrations.updated_by`, `events.actor`). */
  readonly actor: string;
}

/** What rollback clears on the migration's row with the phase change (the engine's rollback sets the same). */
export const ROLLBACK_RESETS: Readonly<Record<string, null | 0>> = {
  rows_backfilled: 0,
  backfill_started_at: null,
  backfill_completed_at: null,
  verify_result: null,
  verified_at: null,
  verified_lsn: null,
  reads_held_at: null,
};

function table(t: Pick<RecordingTarget, 'stateSchema'>, name: string): string {
  return `${quoteIdent(t.stateSchema)}.${name}`;
}

/** A PL/pgSQL block, dollar-quoted with a tag its body does not hold. */
export function doBlock(body: string): string {
  const tag = dollarTag(body);
  return `DO ${tag}\n${body}\n${tag};`;
}

/** `RAISE EXCEPTION` with a message and a hint given as SQL expressions (no `%` format: an id may hold one). */
export function raise(message: string, hint: string): string {
  return `RAISE EXCEPTION USING MESSAGE = ${message}, HINT = ${hint};`;
}

/** Refuses unless the state store is installed at exactly the version these statements were written for. */
export function storeVersionGuardSql(stateSchema: string): string {
  const s = sqlLiteral(stateSchema);
  return doBlock(`DECLARE v integer;
BEGIN
  IF to_regclass(${sqlLiteral(regclassText(stateSchema, 'schema_version'))}) IS NULL THEN
    ${raise(`'phaseflag: no state store in schema "' || ${s} || '"'`, `'Install it first as a role that may create it: npx phaseflag install (or start any phaseflag process once).'`)}
  END IF;
  SELECT coalesce(max(version), 0) INTO v FROM ${table({ stateSchema }, 'schema_version')};
  IF v <> ${LATEST_SCHEMA_VERSION} THEN
    ${raise(`'phaseflag: state schema "' || ${s} || '" is at version ' || v || '; this file was generated for version ${LATEST_SCHEMA_VERSION}'`, `CASE WHEN v < ${LATEST_SCHEMA_VERSION} THEN 'Upgrade the store first: npx phaseflag install.' ELSE 'Generate the files again with the phaseflag that installed the store: npx phaseflag generate <id> --format sql.' END`)}
  END IF;
END`);
}

/** The migration's phase as an SQL expression (NULL when the store does not know it). */
export function migrationPhaseSql(t: RecordingTarget): string {
  return `(SELECT phase FROM ${table(t, 'migrations')} WHERE id = ${sqlLiteral(t.migrationId)})`;
}

/**
 * Records the migration (phase `pending`) unless the store knows it; refuses when the recorded one names another
 * table or other columns (another migration under the same id).
 */
export function registerMigrationSql(
  t: RecordingTarget,
  row: {
    readonly table_schema: string;
    readonly table_name: string;
    readonly old_column: string | null;
    readonly new_column: string;
    readonly definition: Record<string, unknown>;
  },
): string {
  const json = JSON.stringify(row.definition);
  const tag = dollarTag(json, 'def');
  const id = sqlLiteral(t.migrationId);
  const old = row.old_column === null ? 'NULL' : sqlLiteral(row.old_column);
  const insert = `INSERT INTO ${table(t, 'migrations')} (id, table_schema, table_name, old_column, new_column, definition, updated_by)
VALUES (${id}, ${sqlLiteral(row.table_schema)}, ${sqlLiteral(row.table_name)}, ${old}, ${sqlLiteral(row.new_column)}, ${tag}${json}${tag}::jsonb, ${sqlLiteral(t.actor)})
ON CONFLICT (id) DO NOTHING;`;
  const check = doBlock(`BEGIN
  IF NOT EXISTS (SELECT FROM ${table(t, 'migrations')} WHERE id = ${id} AND table_schema = ${sqlLiteral(row.table_schema)}
      AND table_name = ${sqlLiteral(row.table_name)} AND old_column IS NOT DISTINCT FROM ${old} AND new_column = ${sqlLiteral(row.new_column)}) THEN
    ${raise(`'phaseflag: the state store records migration "' || ${id} || '" on another table or other columns than this file'`, `'Another migration has this id: check npx phaseflag status ' || ${id} || ', and give one of them another id.'`)}
  END IF;
END`);
  return `${insert}\n${check}`;
}

/** Refuses unless the migration's phase is one of `allowed` (a store without the migration counts as `pending`). */
export function phaseGuardSql(t: RecordingTarget, allowed: readonly Phase[], doing: string, hint: string): string {
  return doBlock(`DECLARE p text := coalesce(${migrationPhaseSql(t)}, 'pending');
BEGIN
  IF p NOT IN (${allowed.map(sqlLiteral).join(', ')}) THEN
    ${raise(`'phaseflag: migration "' || ${sqlLiteral(t.migrationId)} || '" is ' || p || ': ${doing.replace(/'/g, "''")}'`, sqlLiteral(hint))}
  END IF;
END`);
}

/**
 * Before an ADD COLUMN: remembers that this migration creates the new column (so rollback drops it, and only
 * then), as the engine's expand does, while the column is missing and the migration has not expanded.
 */
export function markCreatedNewColumnSql(
  t: RecordingTarget,
  column: { schema: string; table: string; name: string },
): string {
  return `UPDATE ${table(t, 'migrations')} SET created_new_column = true, updated_at = now()
 WHERE id = ${sqlLiteral(t.migrationId)} AND NOT created_new_column AND phase IN ('pending', 'rolled-back')
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(${sqlLiteral(regclassText(column.schema, column.table))})
     AND attname = ${sqlLiteral(column.name)} AND attnum > 0 AND NOT attisdropped);`;
}

/** Whether this migration created the new column (a boolean SQL expression). */
export function createdNewColumnSql(t: RecordingTarget): string {
  return `coalesce((SELECT created_new_column FROM ${table(t, 'migrations')} WHERE id = ${sqlLiteral(t.migrationId)}), false)`;
}

export function clearCreatedNewColumnSql(t: RecordingTarget): string {
  return `UPDATE ${table(t, 'migrations')} SET created_new_column = false, updated_at = now() WHERE id = ${sqlLiteral(t.migrationId)} AND created_new_column;`;
}

/**
 * One transition, as PostgresStateStore.recordTransition makes it: the phase moves (and its version) only from one
 * of `from`, with its event row and the NOTIFY every router and controller listens to, in one statement. From any
 * other phase it changes nothing, so running it again after a controller made the move is a no-op.
 */
export function recordTransitionSql(
  t: RecordingTarget,
  transition: {
    readonly from: readonly Phase[];
    readonly to: Phase;
    readonly action: string;
    readonly detail: Record<string, unknown>;
    /** Clears what rollback clears (ROLLBACK_RESETS). */
    readonly rollbackResets?: boolean;
  },
): string {
  const m = table(t, 'migrations');
  const id = sqlLiteral(t.migrationId);
  const resets = transition.rollbackResets
    ? Object.entries(ROLLBACK_RESETS)
        .map(([column, value]) => `, ${column} = ${value === null ? 'NULL' : value}`)
        .join('')
    : '';
  return `WITH previous AS (
  SELECT id, phase FROM ${m} WHERE id = ${id} AND phase IN (${transition.from.map(sqlLiteral).join(', ')}) FOR UPDATE
), moved AS (
  UPDATE ${m} AS m SET phase = ${sqlLiteral(transition.to)}, version = m.version + 1, updated_by = ${sqlLiteral(t.actor)}, updated_at = now()${resets}
    FROM previous WHERE m.id = previous.id
  RETURNING previous.phase AS from_phase, m.version
), event AS (
  INSERT INTO ${table(t, 'events')} (migration_id, kind, action, from_phase, to_phase, actor, detail)
  SELECT ${id}, 'transition', ${sqlLiteral(transition.action)}, from_phase, ${sqlLiteral(transition.to)}, ${sqlLiteral(t.actor)}, ${sqlLiteral(JSON.stringify(transition.detail))}::jsonb FROM moved
)
SELECT pg_notify(${sqlLiteral(notifyChannel(t.stateSchema))}, json_build_object('id', ${id}, 'phase', ${sqlLiteral(transition.to)}, 'version', version)::text) FROM moved;`;
}
