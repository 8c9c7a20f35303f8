import type { ResolvedMigration } from '../../catalog/resolved.js';
import { expressionValue, plpgsqlIdent, qualify } from '../../sql/text.js';
import { syncUpdateCondition } from './sync-when.js';

/**
 * The body of the sync trigger's function (see sync-trigger.ts), which keeps the two columns consistent on every
 * write:
 *
 *   INSERT  new column not given (NULL, or its default) → new := backfill(row)
 *           else old column NULL                         → old := reverse(row)
 *   UPDATE  the writer changed new but not old           → old := reverse(row), unless new already equals
 *                                                          backfill(row) (a writer that keeps both right: a
 *                                                          lossy reverse would rewrite old)
 *           new unchanged and an input of the backfill
 *           changed                                      → new := backfill(row)
 *           anything else (both changed, an unrelated
 *           column, a row the backfill has not reached)  → left as written
 *
 * The UPDATE trigger's WHEN clause (sync-when.ts) selects the two UPDATE paths before the function is called, so
 * the function's UPDATE branch only tells them apart: an UPDATE that syncs nothing costs no call. The INSERT
 * trigger has no WHEN clause (nearly every insert from a writer that bypasses phaseflag needs the function).
 *
 * The expressions see the row's columns under their own names (see `evaluator`), without any rewriting of the
 * user's SQL, and are cast exactly as the backfill and verify cast them.
 */

/** Names a variable may not take: it would hide the trigger's own NEW, OLD, FOUND or TG_* inside the block. */
const PLPGSQL_SPECIAL = /^(new|old|found|tg_[a-z_]*)$/;

/**
 * How an expression is evaluated over the row. Preferred: each column it reads (known by name from the catalog
 * analysis) becomes a block variable of the column's type, holding NEW's value, and the expression runs as a
 * plain PL/pgSQL expression, where unqualified names resolve to those variables. That is Postgres's own name
 * resolution, not a rewrite of the user's text, and it runs on PL/pgSQL's fast path for simple expressions, about
 * twice as cheap as a query. When a column's name would shadow a PL/pgSQL special variable, the expression runs
 * as a query over the row instead, `(SELECT <expr> FROM (SELECT NEW.*) AS pf_row)`, where the function's
 * `#variable_conflict use_column` makes such a name mean the column.
 */
function evaluator(r: ResolvedMigration): {
  value: (expression: string, type: string) => string;
  scope: (inputs: readonly string[], body: string[]) => string[];
} {
  const inputs = [...r.backfillInputs, ...r.reverseInputs];
  if (inputs.some((c) => PLPGSQL_SPECIAL.test(c))) {
    return {
      value: (expression, type) => `(SELECT ${expressionValue(expression, type)} FROM (SELECT NEW.*) AS pf_row)`,
      scope: (_inputs, body) => body,
    };
  }
  const typeOf = (c: string) => (c === r.migration.newColumn.name ? r.newColumnType : r.columns.get(c)!.type);
  return {
    value: (expression, type) => expressionValue(expression, type),
    scope: (names, body) =>
      names.length === 0
        ? body
        : [
            'DECLARE',
            ...[...new Set(names)].map((c) => `  ${plpgsqlIdent(c)} ${typeOf(c)} := NEW.${plpgsqlIdent(c)};`),
            'BEGIN',
            ...body.map((l) => `  ${l}`),
            'END;',
          ],
  };
}

/**
 * The name of the state schema's function that records a row the trigger could not derive (store/schema.ts,
 * version 4): SECURITY DEFINER, so the application's role needs no privilege on the state tables.
 */
export const RECORD_UNDERIVABLE_FUNCTION = 'pf_record_underivable';

/**
 * A derivation that may fail on a row's value ('N/A'::int, an unmapped CASE into smallint) must not fail the
 * application's write: until reads switch the old column is authoritative. The assignment runs in an exception
 * block (a subtransaction, entered only on the paths that derive); on error the target column is left NULL (on
 * the new side, never a value derived from an earlier version of the row) and the row is recorded in
 * `underivable`, where verify finds it and refuses `verified` until it is fixed.
 */
function guarded(assign: string[], onError: string[], record: string, enabled = true): string[] {
  if (!enabled) return assign;
  return ['BEGIN', ...indent(assign), 'EXCEPTION WHEN others THEN', ...indent([...onError, record]), 'END;'];
}

/**
 * The trigger function's body. `guarded: false` leaves out the exception blocks (a failing derivation fails the
 * writer's statement, as before): it exists only so the benchmark can measure what the blocks cost.
 */
export function syncFunctionBody(
  r: ResolvedMigration,
  stateSchema: string,
  options: { guarded?: boolean } = {},
): string {
  const safe = options.guarded ?? true;
  const m = r.migration;
  const { value, scope } = evaluator(r);
  const newCol = plpgsqlIdent(m.newColumn.name);
  const oldCol = r.oldColumn === null ? null : plpgsqlIdent(r.oldColumn.name);
  const backfill = m.backfill === null ? null : value(m.backfill, r.newColumnType);
  const reverse = m.reverse === null || r.oldColumn === null ? null : value(m.reverse, r.oldColumn.type);
  const key = `jsonb_build_array(${r.primaryKey.map((c) => `NEW.${plpgsqlIdent(c.name)}`).join(', ')})`;
  // Recording can fail too (a role without USAGE on the state schema): that must not fail the write either. The
  // row is still found: its new column is NULL, which verify compares against the expression and records.
  const record = (what: 'backfill' | 'reverse') =>
    [
      'BEGIN',
      `  PERFORM ${qualify(stateSchema, RECORD_UNDERIVABLE_FUNCTION)}(${literal(m.id)}, ${key}, ` +
        `${oldCol === null ? 'NULL' : `NEW.${oldCol}::text`}, ${what === 'reverse' ? `'reverse of ' || coalesce(NEW.${newCol}::text, 'NULL') || ': ' || ` : ''}SQLERRM, SQLSTATE, 'trigger');`,
      'EXCEPTION WHEN others THEN',
      `  RAISE WARNING 'phaseflag: could not record a row of ${m.id.replace(/'/g, "''")} the expression cannot derive: %', SQLERRM;`,
      'END;',
    ].join('\n');
  // On INSERT the column default has already been applied: a value equal to it counts as not given.
  const unset = `NEW.${newCol} IS NULL${r.newColumnDefaultSql === null ? '' : ` OR NEW.${newCol} IS NOT DISTINCT FROM ${r.newColumnDefaultSql}`}`;
  const fillNew = backfill
    ? guarded(
        scope(r.backfillInputs, [`NEW.${newCol} := ${backfill};`]),
        [`NEW.${newCol} := NULL;`],
        record('backfill'),
        safe,
      )
    : [];
  // A value the reverse cannot map leaves the old column as the writer left it (the old value on UPDATE, NULL on
  // INSERT): setting it NULL would fail a NOT NULL old column, i.e. the write. The row is recorded; verify sees
  // that the columns disagree.
  const fillOld = reverse
    ? guarded(scope(r.reverseInputs, [`NEW.${oldCol} := ${reverse};`]), [], record('reverse'), safe)
    : [];

  const insert: string[] = [];
  if (backfill) insert.push(`IF ${unset} THEN`, ...indent(fillNew));
  if (reverse)
    insert.push(
      `${backfill ? 'ELSIF' : 'IF'} NEW.${oldCol} IS NULL AND NEW.${newCol} IS NOT NULL THEN`,
      ...indent(fillOld),
    );
  if (insert.length > 0) insert.push('END IF;');

  // The trigger's WHEN clause (sync-when.ts) calls the function on an UPDATE only on one of its two paths: the
  // writer changed the new column and not the old one (reverse), or left the new column alone and changed an
  // input of the backfill (backfill). Which one is told by whether the new column changed.
  const condition = syncUpdateCondition(r);
  const reversePath =
    reverse === null
      ? []
      : backfill
        ? // A new value that already agrees with the old column (a writer that keeps both right) must not be
          // reversed: a lossy reverse would rewrite the old column's value. An old value the backfill cannot
          // derive does not agree with anything: the writer's new value is reversed.
          guarded(
            scope(
              [...r.backfillInputs, ...r.reverseInputs],
              [`IF NEW.${newCol} IS DISTINCT FROM ${backfill} THEN`, ...indent(fillOld), 'END IF;'],
            ),
            [],
            fillOld.join('\n'),
            safe,
          )
        : fillOld;
  const backfillPath = condition !== null && backfill !== null;
  // On this path an input of the backfill changed (derive again), or only the key did: the row may have moved out
  // of the backfill's reach, so it is filled if it is still unset, and left alone if it has a value.
  const changedInputs = [...new Set(r.backfillInputs)]
    .filter((c) => c !== m.newColumn.name)
    .map((c) => `NEW.${plpgsqlIdent(c)} IS DISTINCT FROM OLD.${plpgsqlIdent(c)}`);
  const keepNew = [`IF ${[...changedInputs, `(${unset})`].join(' OR ')} THEN`, ...indent(fillNew), 'END IF;'];
  const update: string[] =
    reversePath.length > 0 && backfillPath
      ? [
          `IF NEW.${newCol} IS DISTINCT FROM OLD.${newCol} THEN`,
          ...indent(reversePath),
          'ELSE',
          ...indent(keepNew),
          'END IF;',
        ]
      : reversePath.length > 0
        ? reversePath
        : backfillPath
          ? keepNew
          : ['NULL; -- no UPDATE trigger: nothing an UPDATE writes is synced'];

  // use_column: in the query form, a column named like a PL/pgSQL variable (old, new, found) means the column.
  return `
#variable_conflict use_column
BEGIN
  IF TG_OP = 'INSERT' THEN
${indent(insert.length > 0 ? insert : ['NULL;'], 4).join('\n')}
  ELSE
${indent(update, 4).join('\n')}
  END IF;
  RETURN NEW;
END
`;
}

/** A SQL string literal (standard_conforming_strings: only the quote is doubled). */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function indent(lines: string[], by = 2): string[] {
  const pad = ' '.repeat(by);
  return lines.map((l) => `${pad}${l}`);
}
