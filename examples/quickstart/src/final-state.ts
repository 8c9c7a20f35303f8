import type { Migration } from '@phaseflag/core';
import type { Stack } from './stack.js';

export interface FinalState {
  rows: number;
  newColumnNotNull: boolean;
  oldColumnExists: boolean;
}

/** After contract: how many rows, whether the new column is NOT NULL and whether the old one is gone. */
export async function finalState(stack: Stack, m: Migration): Promise<FinalState> {
  const table = m.table.schema ? `${m.table.schema}.${m.table.name}` : m.table.name;
  const rows = Number((await stack.knex(table).count<Array<{ n: string }>>({ n: '*' }))[0]!.n);
  const columns = await stack.knex.raw<{ rows: Array<{ name: string; not_null: boolean }> }>(
    `SELECT a.attname AS name, a.attnotnull AS not_null FROM pg_attribute a
      WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped`,
    [table],
  );
  const column = (name: string | null) => columns.rows.find((c) => c.name === name);
  return {
    rows,
    newColumnNotNull: column(m.newColumn.name)?.not_null === true,
    oldColumnExists: column(m.oldColumn) !== undefined,
  };
}
