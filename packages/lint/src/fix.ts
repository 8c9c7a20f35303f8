import type { TableRef } from './ast.js';

/** The column change a fix makes, in @phaseflag/core's declaration terms. */
export interface ColumnChange {
  /** What the id says after the table and column (`type`, `rename`, `not-null`, `derive`). */
  what: string;
  table: TableRef;
  oldColumn: string;
  intent?: 'derive';
  newColumn: { name: string; type: string; nullable: boolean };
  backfill: string;
  reverse?: string;
}

/** A string literal a reader can paste into TypeScript or JavaScript. */
const lit = (s: string): string => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n')}'`;

/** The table as phaseflag's `table` field takes it: `'schema.table'` when plain, `{ schema, name }` otherwise. */
function tableField(t: TableRef): string {
  const plain = (s: string) => s.length > 0 && !s.includes('.') && !s.includes('"');
  if (plain(t.name) && (t.schema === undefined || plain(t.schema)))
    return lit(t.schema ? `${t.schema}.${t.name}` : t.name);
  return `{ ${t.schema !== undefined ? `schema: ${lit(t.schema)}, ` : ''}name: ${lit(t.name)} }`;
}

/** A migration id from the table, column and change: letters, digits, `.`, `_`, `-`, at most 63 characters. */
function idOf(c: ColumnChange): string {
  const clean = (s: string) =>
    [...s.toLowerCase()]
      .map((ch) => (/[a-z0-9]/.test(ch) ? ch : '-'))
      .join('')
      .replace(/-+/g, '-')
      .replace(/^-|-$/g, '');
  const id = [c.table.name, c.oldColumn, c.what].map(clean).filter(Boolean).join('-');
  return (id || 'lint-fix').slice(0, 63).replace(/-$/, '');
}

/** `defineMigration({...})` that makes the same column change the phaseflag way, ready to paste. */
export function defineMigrationText(c: ColumnChange): string {
  const lines = [
    `  id: ${lit(idOf(c))},`,
    `  table: ${tableField(c.table)},`,
    `  oldColumn: ${lit(c.oldColumn)},`,
    ...(c.intent ? [`  intent: ${lit(c.intent)},`] : []),
    `  newColumn: { name: ${lit(c.newColumn.name)}, type: ${lit(c.newColumn.type)}, nullable: ${c.newColumn.nullable} },`,
    `  backfill: ${lit(c.backfill)},`,
    ...(c.reverse ? [`  reverse: ${lit(c.reverse)},`] : []),
  ];
  return `defineMigration({\n${lines.join('\n')}\n})`;
}
