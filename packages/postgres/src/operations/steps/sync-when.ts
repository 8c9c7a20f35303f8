import type { ResolvedMigration } from '../../catalog/resolved.js';

/**
 * The WHEN clause of the sync trigger's UPDATE half (sync-trigger.ts): Postgres evaluates it in C, before it
 * would call the PL/pgSQL function, so an UPDATE that has nothing to sync costs no function call. It is true on
 * exactly the two paths the function acts on (sync-function.ts):
 *
 *   reverse   the writer changed the new column and not the old one
 *   backfill  the writer left the new column alone and changed an input of the backfill expression, or a column
 *             of the primary key (the function then fills the new column only if it is still unset)
 *
 * Everything else (an unrelated column, both columns written) leaves the row as written: the backfill's UPDATE,
 * which compares every row with the expression, fills a row it has not reached. A row whose key changes may move
 * out of the backfill's reach (past the range's upper key, or behind the checkpoint), hence the key's columns.
 *
 * Not `UPDATE OF <columns>`: Postgres fires a column-specific trigger only for columns in the statement's SET list,
 * so a value set by one of the table's own BEFORE triggers (which fire first, see sync-trigger.ts) would go
 * unsynced, while a WHEN clause of a BEFORE trigger sees the row as those triggers left it. It would not save
 * anything either: Postgres locks each row for any BEFORE UPDATE row trigger before it looks at the columns or
 * the WHEN clause (measured: an UPDATE OF trigger and a WHEN clause cost the same on an unrelated UPDATE).
 *
 * The condition is written as Postgres deparses it (`pg_get_triggerdef`), so that drift can compare the live
 * clause with this one as text: `quote` must be Postgres's own quote_ident for that comparison.
 */
export type Condition =
  | { readonly kind: 'changed' | 'unchanged'; readonly column: string }
  | { readonly kind: 'and' | 'or'; readonly of: readonly Condition[] };

export function syncUpdateCondition(r: ResolvedMigration): Condition | null {
  const m = r.migration;
  const newColumn = m.newColumn.name;
  const paths: Condition[] = [];
  if (m.reverse !== null && r.oldColumn !== null)
    paths.push({
      kind: 'and',
      of: [
        { kind: 'changed', column: newColumn },
        { kind: 'unchanged', column: r.oldColumn.name },
      ],
    });
  const inputs = [...new Set([...r.backfillInputs, ...r.primaryKey.map((c) => c.name)])].filter((c) => c !== newColumn);
  if (m.backfill !== null && inputs.length > 0)
    paths.push({
      kind: 'and',
      of: [
        { kind: 'unchanged', column: newColumn },
        { kind: 'or', of: inputs.map((column) => ({ kind: 'changed', column }) as const) },
      ],
    });
  return paths.length === 0 ? null : { kind: 'or', of: paths };
}

/** The columns the condition names, for quoting them all at once. */
export function conditionColumns(c: Condition): string[] {
  return 'column' in c ? [c.column] : c.of.flatMap(conditionColumns);
}

/** The condition in Postgres's deparsed form: every operation parenthesised, a one-term AND/OR is its term. */
export function renderCondition(c: Condition, quote: (name: string) => string): string {
  switch (c.kind) {
    case 'changed':
      return `(new.${quote(c.column)} IS DISTINCT FROM old.${quote(c.column)})`;
    case 'unchanged':
      return `(NOT (new.${quote(c.column)} IS DISTINCT FROM old.${quote(c.column)}))`;
    default:
      return c.of.length === 1
        ? renderCondition(c.of[0]!, quote)
        : `(${c.of.map((x) => renderCondition(x, quote)).join(c.kind === 'and' ? ' AND ' : ' OR ')})`;
  }
}

/** The WHEN clause as `pg_get_triggerdef` prints it: what follows `WHEN ` up to ` EXECUTE FUNCTION`. */
export function deparsedWhen(definition: string): string | null {
  const start = definition.indexOf(' FOR EACH ROW WHEN (');
  const end = definition.lastIndexOf(') EXECUTE FUNCTION ');
  return start < 0 || end < start ? null : definition.slice(start + ' FOR EACH ROW WHEN ('.length, end);
}
