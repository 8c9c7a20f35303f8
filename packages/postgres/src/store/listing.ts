import { objectName } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import type { MigrationRow } from './rows.js';

/** A migration as the state store holds it, whether or not any declaration names it now. */
export interface StoredMigrationRow {
  readonly row: MigrationRow;
  /** Its sync trigger is on its table and enabled: writers of the table still go through it. */
  readonly syncTriggerInstalled: boolean;
}

/** Every migration the store knows, by id; read-only (the caller checks the store is there). */
export async function listStoredMigrations(ctx: ExecutorContext): Promise<StoredMigrationRow[]> {
  const rows = (await ctx.knex
    .select('*')
    .from(ctx.knex.raw('??.??', [ctx.stateSchema, 'migrations']))
    .orderBy('id')) as MigrationRow[];
  const out: StoredMigrationRow[] = [];
  for (const r of rows) {
    const trigger = await ctx.knex.raw<{ rows: unknown[] }>(
      `SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ? AND c.relname = ? AND t.tgname IN (?, ?) AND t.tgenabled <> 'D'`,
      // Either half of the sync trigger (operations/steps/sync-trigger.ts): UPDATE, and INSERT.
      [r.table_schema, r.table_name, objectName('zz_pf_sync', r.id), objectName('zz_pf_sync', r.id, 'insert')],
    );
    out.push({
      row: {
        ...r,
        version: Number(r.version),
        rows_backfilled: Number(r.rows_backfilled),
        rows_estimate: r.rows_estimate === null ? null : Number(r.rows_estimate),
      },
      syncTriggerInstalled: trigger.rows.length > 0,
    });
  }
  return out;
}
