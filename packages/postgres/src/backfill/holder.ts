import type { Knex } from 'knex';
import { advisoryKey } from '../store/advisory.js';

/** The backend holding a backfill's runner lock: who runs it now. */
export interface BackfillRunner {
  readonly pid: number;
  readonly application_name: string | null;
  readonly client_addr: string | null;
  readonly backend_start: Date;
}

/** pg_locks shows a bigint advisory key as two oids (high and low halves); $1 is the key. */
export const ADVISORY_HOLDER_SQL = `
  SELECT l.pid, a.application_name, a.client_addr::text AS client_addr, a.backend_start
    FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND l.classid = ((($1::bigint >> 32) & 4294967295)::bigint)::oid AND l.objid = (($1::bigint & 4294967295)::bigint)::oid
   LIMIT 1`;

export function backfillLockKey(migrationId: string): string {
  return advisoryKey('backfill', migrationId);
}

/**
 * The backend running this migration's backfill (in any process: a controller, a CLI), or null when none does.
 * Status displays use it, and a controller's decision needs it: `backfilling` with no runner anywhere is a run to
 * resume, with one elsewhere it is not.
 */
export async function findBackfillRunner(knex: Knex, migrationId: string): Promise<BackfillRunner | null> {
  const key = backfillLockKey(migrationId);
  // knex binds `?`; the statement names its one parameter twice.
  const result = await knex.raw(ADVISORY_HOLDER_SQL.replace(/\$1/g, '?'), [key, key]);
  return (result.rows[0] as BackfillRunner | undefined) ?? null;
}
