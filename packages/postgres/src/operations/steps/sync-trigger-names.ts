import { objectName } from '@phaseflag/core';
import type { ResolvedMigration } from '../../catalog/resolved.js';

/**
 * The names of the sync trigger's objects (see sync-trigger.ts). Both triggers start with "zz_" so that they fire
 * after the table's own BEFORE triggers (Postgres fires them in the byte order of their names).
 */
export function syncFunctionName(r: Pick<ResolvedMigration, 'migration'>): string {
  return objectName('pf_sync', r.migration.id);
}

/** The UPDATE trigger (the one the backfill's own UPDATE would fire). */
export function syncTriggerName(r: Pick<ResolvedMigration, 'migration'>): string {
  return objectName('zz_pf_sync', r.migration.id);
}

export function syncInsertTriggerName(r: Pick<ResolvedMigration, 'migration'>): string {
  return objectName('zz_pf_sync', r.migration.id, 'insert');
}
