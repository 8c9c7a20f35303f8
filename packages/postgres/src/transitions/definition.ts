import { isInFlight, ValidationError, type Migration } from '@phaseflag/core';
import type { MigrationScope } from './scope.js';
import type { MigrationRow } from '../store/rows.js';

/**
 * What a migration does (table, columns, type, expressions, sync) is recorded in the state store when it is first
 * registered (migrations.definition) and may not change while it is in flight or contracted: the trigger, the
 * rows already backfilled and verify all follow the recorded one. How fast it runs (batch, throttle, ddl timeouts,
 * flag names) may change at any time.
 */

/** The part of a definition that may not change while the migration is in flight. */
export function definitionShape(def: Record<string, unknown>): Record<string, unknown> {
  const d = def as unknown as Migration;
  return {
    table: d.table,
    primaryKey: d.primaryKey,
    oldColumn: d.oldColumn,
    intent: d.intent ?? 'replace',
    // Recorded before newColumn.references existed: no foreign key.
    newColumn: { ...d.newColumn, references: d.newColumn.references ?? null },
    backfill: d.backfill,
    reverse: d.reverse,
    sync: d.sync,
  };
}

/** JSON with sorted keys: jsonb does not keep key order, so stored and declared definitions compare by content. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** Field by field, `path: recorded → declared`, e.g. `backfill: "a::int" → "a::bigint"`; empty when the shapes agree. */
export function definitionChanges(recorded: Record<string, unknown>, declared: Record<string, unknown>): string[] {
  const out: string[] = [];
  const walk = (path: string, a: unknown, b: unknown): void => {
    if (canonical(a) === canonical(b)) return;
    const objects = [a, b].every((x) => x !== null && typeof x === 'object' && !Array.isArray(x));
    if (objects) {
      const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
      for (const k of keys)
        walk(path ? `${path}.${k}` : k, (a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
      return;
    }
    out.push(`${path}: ${show(a)} → ${show(b)}`);
  };
  walk('', definitionShape(recorded), definitionShape(declared));
  return out;
}

function show(v: unknown): string {
  return v === undefined ? '(none)' : canonical(v);
}

/** The error for a declaration that no longer matches the recorded one of a migration in flight. */
export function definitionChangedError(
  scope: MigrationScope,
  row: MigrationRow,
  changes: readonly string[],
): ValidationError {
  return new ValidationError(
    'PF_DEFINITION_CHANGED',
    `Migration "${scope.id}" is ${row.phase} but its declaration changed: ${changes.join('; ')}. Nothing was run.`,
    {
      value: {
        recorded: definitionShape(row.definition),
        declared: definitionShape(scope.migration as unknown as Record<string, unknown>),
        changes,
      },
      migrationId: scope.id,
      hint: 'Put the recorded declaration back to continue, or roll back (rollback undoes what the recorded declaration created, whatever is declared now) and run it again with the new one, or declare a new migration with a new id.',
    },
  );
}

/** The changes between the recorded and the declared definition that the migration's phase forbids, if any. */
export function forbiddenChanges(scope: MigrationScope, row: MigrationRow): string[] {
  if (!isInFlight(row.phase) && row.phase !== 'contracted') return [];
  return definitionChanges(row.definition, scope.migration as unknown as Record<string, unknown>);
}

/**
 * Refuses, before anything runs, to work on a migration in flight whose declaration changed since it was recorded:
 * the backfill would otherwise fill the remaining rows with another expression than the trigger and the rows
 * already done. Nothing to check when the store does not know the migration yet.
 */
export async function assertDefinitionUnchanged(scope: MigrationScope): Promise<MigrationRow | null> {
  const row = await scope.store.get(scope.id);
  if (row === null) return null;
  const changes = forbiddenChanges(scope, row);
  if (changes.length > 0) throw definitionChangedError(scope, row, changes);
  return row;
}

/**
 * The migration as recorded (what it does) with the declared operational settings: what rollback works from, so it
 * drops exactly what was created even when the declaration changed since.
 */
export function recordedMigration(scope: MigrationScope, row: MigrationRow): Migration {
  return deepFreeze({
    ...scope.migration,
    ...(JSON.parse(JSON.stringify(definitionShape(row.definition))) as Partial<Migration>),
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
