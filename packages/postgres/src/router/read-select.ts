import {
  formatQualifiedName,
  parseQualifiedName,
  quoteIdent,
  ValidationError,
  writesBoth,
  type Phase,
} from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ResolvedMigration } from '../catalog/resolved.js';
import { expressionValue, forKnex } from '../sql/text.js';

/**
 * What `KnexRouter.select()` returns: one representation per read, whatever the phase, so that turning a flag
 * never changes what a field means to the code that reads it.
 *
 * - meaning `new` (default), under the new column's name: before reads switch, the backfill expression over the
 *   row's old column, cast to the new type (`(amount_cents::numeric / 100)::numeric(12,2) AS "amount"`) — the
 *   value verify proves the new column holds; after the switch, the new column itself.
 * - meaning `old`, under the old column's name: the old column before the switch; after it, the reverse
 *   expression over the new column, cast to the old type. Refused (PF_INVALID_OPTIONS) when the migration has no
 *   old column or no reverse expression, whatever the phase, so the gap shows at the first call.
 *
 * Expressions name bare columns. With `table`, every column is qualified by it and the expression is evaluated
 * over a one-row subquery that renames the qualified columns back to bare names, so it stays unambiguous in a join.
 */
export type ReadMeaning = 'new' | 'old';

export interface SelectOptions {
  /** Which column's meaning the value has (default `new`). */
  meaning?: ReadMeaning;
  /** The name the value is returned under (default: the name of the column whose meaning it has). */
  as?: string;
  /**
   * A table name or alias to qualify the columns with, for queries that join tables sharing column names: written
   * like the migration's table (`orders`, `app.orders`, `"Sales Data"."order-lines"`).
   */
  table?: string;
  /**
   * false: never add the shadow comparison to this read (a query the extra select-list item would break: GROUP BY,
   * DISTINCT, UNION). Default: added while shadow reads are on for the request (see shadow-select.ts).
   */
  shadow?: boolean;
}

interface Parsed {
  readonly meaning: ReadMeaning;
  readonly as: string | undefined;
  /** The qualifier as SQL text (quoted). */
  readonly table: string | undefined;
  readonly shadow: boolean;
}

/** Validates select()'s options once per call (a few property reads). */
export function parseSelectOptions(options: unknown, migrationId: string): Parsed {
  if (options === undefined) return { meaning: 'new', as: undefined, table: undefined, shadow: true };
  const bad = (what: string): never => {
    throw new ValidationError('PF_INVALID_OPTIONS', `router.select(context, options): ${what}.`, {
      value: options,
      migrationId,
      hint: 'Pass { meaning?: "new" | "old", as?: string, table?: string, shadow?: boolean }; the value is returned under `as` (default: the column whose meaning it has).',
    });
  };
  if (typeof options !== 'object' || options === null)
    bad(`options must be an object, got ${JSON.stringify(options)} (the name is now the "as" option)`);
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['meaning', 'as', 'table', 'shadow'].includes(k)) bad(`unknown option "${k}"`);
  if (o.shadow !== undefined && typeof o.shadow !== 'boolean') bad('shadow must be a boolean');
  if (o.meaning !== undefined && o.meaning !== 'new' && o.meaning !== 'old')
    bad(`meaning must be "new" or "old", got ${JSON.stringify(o.meaning)}`);
  if (o.as !== undefined && (typeof o.as !== 'string' || o.as === '')) bad('as must be a non-empty string');
  if (o.table !== undefined && (typeof o.table !== 'string' || o.table === '')) bad('table must be a non-empty string');
  return {
    meaning: (o.meaning as ReadMeaning | undefined) ?? 'new',
    as: o.as as string | undefined,
    table: o.table === undefined ? undefined : formatQualifiedName(parseQualifiedName(o.table, 'select() table')),
    shadow: o.shadow !== false,
  };
}

/** The select-list item for one read, given the side the read rule chose for the request. */
export function selectItem(
  knex: Knex,
  r: ResolvedMigration,
  phase: Phase | 'unknown',
  side: 'old' | 'new',
  o: Parsed,
): Knex.Raw {
  const m = r.migration;
  const newCol = m.newColumn.name;
  if (o.meaning === 'old') {
    const oldCol = m.oldColumn;
    if (oldCol === null || r.oldColumn === null) {
      throw new ValidationError(
        'PF_INVALID_OPTIONS',
        `Migration "${m.id}" has no old column: there is no old meaning to read.`,
        {
          value: o,
          migrationId: m.id,
          hint: 'Read the new meaning: router.select(context).',
        },
      );
    }
    if (m.reverse === null) {
      throw new ValidationError(
        'PF_INVALID_OPTIONS',
        `Migration "${m.id}" has no reverse expression: once reads switch, the old meaning of "${oldCol}" cannot be derived from "${newCol}".`,
        {
          value: o,
          migrationId: m.id,
          hint: 'Declare `reverse` (old from new), or read the new meaning: router.select(context).',
        },
      );
    }
    const as = o.as ?? oldCol;
    if (side === 'old') return column(knex, o.table, oldCol, as);
    return expression(knex, m.reverse, r.reverseInputs, r.oldColumn.type, o.table, as);
  }
  const as = o.as ?? newCol;
  if (side === 'new') return column(knex, o.table, newCol, as);
  if (m.backfill !== null) return expression(knex, m.backfill, r.backfillInputs, r.newColumnType, o.table, as);
  // Nothing to derive the new meaning from (a brand-new column): the column itself once expand has run and
  // writers fill it, its default (or a typed NULL) before that.
  if (phase !== 'unknown' && writesBoth(phase)) return column(knex, o.table, newCol, as);
  return knex.raw(`${forKnex(r.newColumnDefaultSql ?? `NULL::${r.newColumnType}`)} AS ${quoteIdent(as)}`);
}

/**
 * Names are quoted here, not bound as knex identifiers (`??`): knex splits those on "." and reads " as " in them,
 * so a column named "a.b" would become "a"."b". quoteIdent's text holds no "?" for knex to take as a placeholder.
 */
function column(knex: Knex, table: string | undefined, name: string, as: string): Knex.Raw {
  return knex.raw(`${table === undefined ? '' : `${table}.`}${quoteIdent(name)} AS ${quoteIdent(as)}`);
}

/**
 * `(<expression>)::<type> AS <as>`. The expression goes through `expressionValue()`, as everywhere else it is pasted
 * into a statement; knex's `?` placeholders are escaped, since an expression may use `?` as an operator (jsonb).
 */
function expression(
  knex: Knex,
  expr: string,
  inputs: readonly string[],
  type: string,
  table: string | undefined,
  as: string,
): Knex.Raw {
  const text = forKnex(expressionValue(expr, type));
  if (table === undefined || inputs.length === 0) return knex.raw(`${text} AS ${quoteIdent(as)}`);
  const renames = inputs.map((c) => `${table}.${quoteIdent(c)} AS ${quoteIdent(c)}`).join(', ');
  return knex.raw(`(SELECT ${text} FROM (SELECT ${renames}) AS pf_row) AS ${quoteIdent(as)}`);
}
