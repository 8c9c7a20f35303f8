import { isDeepStrictEqual } from 'node:util';
import { defineMigration, type Migration, type MigrationInput } from '@phaseflag/core';
import { CliError } from '../errors.js';

/** Top-level fields whose null is a declaration of its own (no old column, no expression), not "not given". */
const NULLABLE_FIELDS = new Set(['oldColumn', 'backfill', 'reverse']);

function withoutNulls(value: unknown, top: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => withoutNulls(v, false));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, v]) => v !== null || (top && NULLABLE_FIELDS.has(key)))
      .map(([key, v]) => [key, withoutNulls(v, false)]),
  );
}

/**
 * The migration as a declaration `defineMigration()` takes (plain JSON, every default written out), so that a
 * generated file rebuilds exactly this migration whatever the defaults of a later phaseflag are. Checked here:
 * defining it again gives the same migration, or nothing is written.
 */
export function declarationOf(migration: Migration): MigrationInput {
  const normalized = JSON.parse(JSON.stringify(migration)) as unknown;
  const declaration = withoutNulls(normalized, true) as MigrationInput;
  const again = JSON.parse(JSON.stringify(defineMigration(declaration))) as unknown;
  if (!isDeepStrictEqual(again, normalized)) {
    throw new CliError(
      'PF_USAGE_INVALID_MIGRATION',
      `Migration "${migration.id}" cannot be written as a plain declaration that defines the same migration again.`,
      'This is likely a bug in phaseflag; generate --format sql, or report it with the declaration.',
      migration.id,
    );
  }
  return declaration;
}
