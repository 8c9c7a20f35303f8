import type { Knex } from 'knex';
import { advisoryKey, advisoryLockHolder, type AdvisoryLockHolder } from '../../driver/advisory.js';

/** The backend holding a backfill's runner lock: who runs it now. */
export type BackfillRunner = AdvisoryLockHolder;

/**
 * The runner lock of one migration in one state store: two stores (test suites, tenants) sharing a database and a
 * migration id each run their own backfill.
 */
export function backfillLockKey(stateSchema: string, migrationId: string): string {
  return advisoryKey('backfill', `${stateSchema}:${migrationId}`);
}

/**
 * The backend running this migration's backfill (in any process: a controller, a CLI), or null when none does.
 * Status displays use it, and a controller's decision needs it: `backfilling` with no runner anywhere is a run to
 * resume, with one elsewhere it is not.
 */
export function findBackfillRunner(
  knex: Knex,
  stateSchema: string,
  migrationId: string,
): Promise<BackfillRunner | null> {
  return advisoryLockHolder(knex, backfillLockKey(stateSchema, migrationId));
}
