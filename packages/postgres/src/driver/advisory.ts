import { createHash } from 'node:crypto';
import { ConflictError } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ExecutorContext } from '../context.js';
import { closeDedicated, discardOnRelease, openDedicated, type PgConnection } from './connection.js';
import { assertSessionConnection } from './pooler.js';

/**
 * phaseflag's one advisory-lock mechanism: session-level locks (`pg_try_advisory_lock`), never waited for, held on
 * a connection of the caller's and gone with it, so a process that dies never leaves one behind. Keys are 64-bit
 * integers derived from a purpose and a name, so that phaseflag's locks do not collide with each other (or, in
 * practice, with an application's own small-integer keys).
 */
export function advisoryKey(purpose: string, name: string): string {
  const digest = createHash('sha256').update(`phaseflag:${purpose}:${name}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** Takes the lock on this connection if nobody holds it; never waits. */
export async function tryAdvisoryLock(connection: PgConnection, key: string): Promise<boolean> {
  const row = (await connection.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [key])).rows[0];
  return row?.locked === true;
}

/** Gives the lock back; if that fails the connection is closed, which releases it server-side. */
export async function advisoryUnlock(connection: PgConnection, key: string): Promise<void> {
  try {
    await connection.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
  } catch {
    discardOnRelease(connection, 'phaseflag: advisory unlock failed');
    await connection.end().catch(() => undefined);
  }
}

/** The backend holding an advisory lock of this database, as pg_stat_activity tells it. */
export interface AdvisoryLockHolder {
  readonly pid: number;
  readonly application_name: string | null;
  readonly client_addr: string | null;
  readonly backend_start: Date;
}

/** pg_locks shows a bigint advisory key as two oids (high and low halves). */
const HOLDER_SQL = `
  SELECT l.pid, a.application_name, a.client_addr::text AS client_addr, a.backend_start
    FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND l.classid = (((?::bigint >> 32) & 4294967295)::bigint)::oid AND l.objid = ((?::bigint & 4294967295)::bigint)::oid
   LIMIT 1`;

/**
 * Whether backend `pid` still holds advisory lock `key` (bigint text), as an SQL expression over two parameters:
 * a fence a transaction on another connection can check. pg_locks is read live, not from the transaction's
 * snapshot.
 */
export function advisoryHeldSql(pid: string, key: string): string {
  return `EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = ${pid}::int
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND l.classid = (((${key}::bigint >> 32) & 4294967295)::bigint)::oid
                     AND l.objid = ((${key}::bigint & 4294967295)::bigint)::oid)`;
}

/** Who holds the lock now (any process), or null when it is free. */
export async function advisoryLockHolder(knex: Knex, key: string): Promise<AdvisoryLockHolder | null> {
  const result = await knex.raw(HOLDER_SQL, [key, key]);
  return (result.rows[0] as AdvisoryLockHolder | undefined) ?? null;
}

/**
 * Runs `fn` while holding the lock `purpose`/`name` (scoped to the state schema) on a connection of its own,
 * outside the pool: `fn` may then use every pooled connection, so a pool of one still works. Only one holder
 * at a time: a second one gets a ConflictError at once instead of queueing.
 */
export async function withSessionLock<T>(
  ctx: ExecutorContext,
  purpose: string,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const key = advisoryKey(purpose, `${ctx.stateSchema}:${name}`);
  // Through a transaction pooler the lock would be taken on a server connection other clients get next.
  await assertSessionConnection(ctx.knex, `run a ${purpose} of "${name}"`);
  const connection = await openDedicated(ctx.knex);
  try {
    if (!(await tryAdvisoryLock(connection, key))) {
      throw new ConflictError(
        purpose === 'backfill' ? 'PF_BACKFILL_LOCKED' : 'PF_MIGRATION_CONFLICT',
        `Another process is running a ${purpose} of "${name}".`,
        {
          value: name,
          migrationId: name,
          hint: 'Wait for it to finish (see `phaseflag status`), or stop that process; its lock goes with its connection.',
        },
      );
    }
    try {
      return await fn();
    } finally {
      await advisoryUnlock(connection, key);
    }
  } finally {
    await closeDedicated(ctx.knex, connection).catch(() => undefined);
  }
}
