import { quoteIdent } from '@phaseflag/core';
import type { ColumnInfo, ResolvedMigration } from '../../catalog/resolved.js';

/**
 * SQL fragments over a (possibly composite) primary key.
 *
 * Keys travel as jsonb arrays built by `jsonb_build_array` (the checkpoint, range bounds, sample keys) and are
 * handed back to Postgres as one jsonb parameter whose elements are cast to the column types. That round trip is
 * lossless for every key type we meet (jsonb numbers are arbitrary precision, so a bigint above 2^53 survives;
 * timestamps come out in ISO form whatever the session's DateStyle), and JavaScript never has to understand a key.
 *
 * The column types are format_type() output read from the catalog, which Postgres already quotes where needed;
 * identifiers always go through quoteIdent.
 */
export interface KeySql {
  readonly columns: readonly ColumnInfo[];
  /** `t."a"`, `t."b"` */
  readonly qualified: readonly string[];
  /** `t."a", t."b"` */
  readonly list: string;
  /** `(t."a", t."b")`: a row constructor, so comparisons are lexicographic and served by the pk index. */
  readonly row: string;
  /** `t."a" DESC, t."b" DESC` */
  readonly descending: string;
  /** `jsonb_build_array(t."a", t."b")` */
  readonly json: string;
}

export const TABLE_ALIAS = 't';

export function qualifiedTable(r: ResolvedMigration): string {
  return `${quoteIdent(r.schema)}.${quoteIdent(r.table)}`;
}

export function keySql(columns: readonly ColumnInfo[], alias = TABLE_ALIAS): KeySql {
  const cols = columns.map((c) => `${alias}.${quoteIdent(c.name)}`);
  const list = cols.join(', ');
  return {
    columns,
    qualified: cols,
    list,
    row: `(${list})`,
    descending: cols.map((c) => `${c} DESC`).join(', '),
    json: `jsonb_build_array(${list})`,
  };
}

/** `(($n::jsonb->>0)::integer, ($n::jsonb->>1)::text)`: a typed row from one jsonb key parameter. */
export function keyParam(columns: readonly ColumnInfo[], param: string): string {
  return `(${columns.map((c, i) => `(${param}::jsonb->>${i})::${c.type}`).join(', ')})`;
}

const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);

/** A single integer key can be split into ranges arithmetically, without reading the table. */
export function isSingleIntegerKey(columns: readonly ColumnInfo[]): boolean {
  return columns.length === 1 && INTEGER_TYPES.has(columns[0]!.type);
}

/**
 * A stored key made readable for people and JavaScript: integers beyond 2^53 become strings instead of being
 * silently rounded by JSON.parse (a sample key that names the wrong row is worse than none).
 */
export function displayKeySql(jsonExpr: string): string {
  return `(SELECT jsonb_agg(CASE WHEN jsonb_typeof(e) = 'number' AND abs(e::text::numeric) > 9007199254740991
                                 THEN to_jsonb(e #>> '{}') ELSE e END ORDER BY i)
             FROM jsonb_array_elements(${jsonExpr}) WITH ORDINALITY AS x(e, i))`;
}
