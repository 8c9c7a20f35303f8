import { quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ResolvedMigration } from '../catalog/resolved.js';
import { expressionValue, forKnex } from '../sql/text.js';

/**
 * The comparison a shadow read adds beside its value, one more select-list item over the same row:
 *
 *   CASE WHEN "amount" IS NOT DISTINCT FROM ((amount_cents::numeric / 100)::numeric(12,2)) THEN NULL
 *        ELSE json_build_array(json_build_array("id"), "amount_cents"::text, "amount"::text)::text END AS "pf_shadow_…"
 *
 * NULL when the row's new column holds what the backfill expression gives over its old column (what the read will
 * answer from the new column once reads switch equals what it answers now), otherwise the row's key and both
 * values, which the router takes off the row before the application sees it (shadow-collector.ts). The old column
 * is the authority until reads switch, for a replacement and a derived column alike, so this is the direction that
 * matters: it is the same equation verify proves, on the rows live traffic reads.
 */
export function shadowItem(knex: Knex, r: ResolvedMigration, table: string | undefined, name: string): Knex.Raw {
  const m = r.migration;
  const col = (c: string) => `${table === undefined ? '' : `${table}.`}${quoteIdent(c)}`;
  const expected = expressionValue(m.backfill!, r.newColumnType);
  // Qualified columns (a join) are renamed back to bare names in a one-row subquery, as select()'s value is.
  const derived =
    table === undefined || r.backfillInputs.length === 0
      ? expected
      : `(SELECT ${expected} FROM (SELECT ${r.backfillInputs.map((c) => `${col(c)} AS ${quoteIdent(c)}`).join(', ')}) AS pf_row)`;
  const key = m.primaryKey.map(col).join(', ');
  const newCol = col(m.newColumn.name);
  const sql = `CASE WHEN ${newCol} IS NOT DISTINCT FROM ${derived} THEN NULL ELSE json_build_array(json_build_array(${key}), ${col(m.oldColumn!)}::text, ${newCol}::text)::text END AS ${quoteIdent(name)}`;
  return knex.raw(forKnex(sql));
}
