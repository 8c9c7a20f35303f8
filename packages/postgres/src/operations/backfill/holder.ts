import { ConflictError, quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ExecutorContext } from '../../context.js';
import { advisoryKey, advisoryLockHolder, type AdvisoryLockHolder } from '../../driver/advisory.js';
import type { Session } from '../../driver/session.js';
import type { RunnerFence } from './run-shared.js';

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

/**
 * Right after taking the runner lock: waits for any batch of a runner that held it before (one whose lock
 * connection was killed while a batch was committing) by locking the migration row every batch's commit
 * statement locks, so the checkpoints read next include that batch. Such a runner's later batches fail the
 * fence (RunShared.fence) and roll back.
 */
export async function takeOver(lock: Session, stateSchema: string, id: string, key: string): Promise<RunnerFence> {
  const pid = (await lock.one<{ pid: number }>('SELECT pg_backend_pid() AS pid'))!.pid;
  await lock.transaction(() =>
    lock.query(`SELECT 1 FROM ${quoteIdent(stateSchema)}.migrations WHERE id = $1 FOR UPDATE`, [id]),
  );
  return { pid, key };
}

export async function lockedError(ctx: ExecutorContext, id: string): Promise<ConflictError> {
  const holder = await findBackfillRunner(ctx.knex, ctx.stateSchema, id).catch(() => undefined);
  return new ConflictError(
    'PF_BACKFILL_LOCKED',
    `Another backfill of "${id}" is running${holder ? ` (backend pid ${holder.pid})` : ''}.`,
    {
      value: holder ?? null,
      migrationId: id,
      hint: 'Let it finish, or pause the migration to stop it after its current batch. A runner whose process died releases the lock when the server notices its connection closed (at once on one host; after TCP keepalives across a network).',
    },
  );
}
