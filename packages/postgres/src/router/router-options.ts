import { redactUrls, ValidationError } from '@phaseflag/core';
import type { Knex } from 'knex';

export interface KnexRouterOptions {
  /** Identifies this service instance in heartbeats (default: a random id per router). */
  instanceId?: string;
  /** How often the instance reports the phase it applies; 0 turns heartbeats off. */
  heartbeatMs?: number;
  /**
   * The knex the application reads with when it reads from a streaming replica. Reads (`column()`, `select()`,
   * `decide().read`) then move to the new column only once that replica has replayed past the WAL position recorded
   * when the migration became verified, and stay on the old column while it lags or cannot be asked. Writes are
   * unchanged (they go to the primary).
   */
  replica?: Knex;
  /** How often the replica's replay position is read while reads could switch (default 1000 ms, at least 10). */
  replicaCheckMs?: number;
}

export const DEFAULT_REPLICA_CHECK_MS = 1000;

/** The replica options, checked once when the router is made; anything else there is PF_INVALID_OPTIONS. */
export function parseReplicaOptions(
  options: KnexRouterOptions,
  migrationId: string,
): { replica: Knex; checkMs: number } | undefined {
  const { replica, replicaCheckMs } = options;
  if (replica === undefined) {
    if (replicaCheckMs !== undefined) {
      throw new ValidationError('PF_INVALID_OPTIONS', 'router(): replicaCheckMs without replica.', {
        value: replicaCheckMs,
        migrationId,
        hint: 'Pass the knex you read from as `replica`, or drop replicaCheckMs.',
      });
    }
    return undefined;
  }
  // A knex instance is a function with a client, as the Phaseflag's own `knex` option is checked.
  if (typeof replica !== 'function' || typeof (replica as { client?: unknown }).client !== 'object') {
    throw new ValidationError('PF_INVALID_OPTIONS', 'router(): `replica` must be a knex instance.', {
      // A connection string is the likely mistake; it may carry a password.
      value: typeof replica === 'string' ? redactUrls(replica) : replica === null ? null : typeof replica,
      migrationId,
      hint: "Pass the knex the application reads from, e.g. `router(flags, { replica: knex({ client: 'pg', connection: replicaUrl }) })`.",
    });
  }
  const checkMs = replicaCheckMs ?? DEFAULT_REPLICA_CHECK_MS;
  if (typeof checkMs !== 'number' || !Number.isFinite(checkMs) || checkMs < 10) {
    throw new ValidationError('PF_INVALID_OPTIONS', `router(): invalid replicaCheckMs ${JSON.stringify(checkMs)}.`, {
      value: replicaCheckMs,
      migrationId,
      hint: `Give replicaCheckMs in milliseconds, a finite number of at least 10 (default ${DEFAULT_REPLICA_CHECK_MS}).`,
    });
  }
  return { replica, checkMs };
}
