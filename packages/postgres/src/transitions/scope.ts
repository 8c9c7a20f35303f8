import type { Migration } from '@phaseflag/core';
import { resolveMigration } from '../catalog/resolve.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import type { ExecutorContext } from '../context.js';
import { assertSessionConnection } from '../driver/pooler.js';
import type { PostgresStateStore } from '../store/state-store.js';
import type { TransitionOptions } from '../types.js';

/**
 * Everything a transition works with, and nothing more: one migration, the executor's context, the state store and
 * the two timings the guards use. The handle builds one; a transition never sees the handle, the Phaseflag or the
 * controller.
 */
export interface MigrationScope {
  readonly id: string;
  readonly migration: Migration;
  readonly ctx: ExecutorContext;
  readonly store: PostgresStateStore;
  /** How long destructive steps wait after the phase change has been announced. */
  readonly graceMs: number;
  /** Heartbeats older than this do not count as live instances. */
  readonly instanceTtlMs: number;
}

/** The same scope for another declaration of the migration (rollback works from the recorded one). */
export function withMigration(s: MigrationScope, migration: Migration): MigrationScope {
  return { ...s, migration };
}

/**
 * Checks the declaration against the live catalog; throws a typed error and changes nothing when it does not
 * fit. A missing old column fits only once the migration is contracted with the drop recorded in the store.
 */
export function resolveScope(s: MigrationScope): Promise<ResolvedMigration> {
  return resolveMigration(s.ctx.knex, s.migration, { stateSchema: s.ctx.stateSchema });
}

/**
 * The scope for an operator step, once the operator's connection is known to keep a session (its step lock,
 * runner lock and session settings; PF_TRANSACTION_POOLER before anything is changed otherwise), with the
 * caller's lock-wait listener (after the engine's) in its context, for the step's DDL.
 */
export async function operatorScope(
  s: MigrationScope,
  what: string,
  { onLockWait: mine }: TransitionOptions = {},
): Promise<MigrationScope> {
  await assertSessionConnection(s.ctx.knex, `${what} "${s.id}"`);
  const engine = s.ctx.onLockWait;
  if (!mine) return s;
  return { ...s, ctx: { ...s.ctx, onLockWait: (w) => (engine?.(w), mine(w)) } };
}
