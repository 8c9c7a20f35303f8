import { ConflictError } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { advisoryKey } from './advisory.js';

/**
 * Runs `fn` while holding a session-level advisory lock on a connection of its own. Session locks survive the
 * transactions run meanwhile and vanish with the connection, so a process that dies never leaves one behind.
 * Only one holder at a time: a second one gets a ConflictError at once instead of queueing.
 */
export async function withSessionLock<T>(ctx: ExecutorContext, purpose: string, name: string, fn: () => Promise<T>): Promise<T> {
  const key = advisoryKey(purpose, `${ctx.stateSchema}:${name}`);
  const client = ctx.knex.client as { acquireConnection(): Promise<{ query(q: string, v?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> }>; releaseConnection(c: unknown): Promise<void> };
  const conn = await client.acquireConnection();
  try {
    const got = (await conn.query('SELECT pg_try_advisory_lock($1) AS ok', [key])).rows[0]!.ok === true;
    if (!got) {
      throw new ConflictError(purpose === 'backfill' ? 'PF_BACKFILL_LOCKED' : 'PF_MIGRATION_CONFLICT', `Another process is running a ${purpose} of "${name}".`, {
        value: name, migrationId: name,
        hint: 'Wait for it to finish (see `phaseflag status`), or stop that process; its lock goes with its connection.',
      });
    }
    try {
      return await fn();
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
    }
  } finally {
    await client.releaseConnection(conn);
  }
}
