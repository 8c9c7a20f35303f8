import { ValidationError, type Migration, type TransitionDecision } from '@phaseflag/core';
import type { MigrationHandle, TransitionOptions } from '../migration-handle.js';
import * as ops from '../operations.js';
import { runPreflight, type PreflightResult } from '../preflight.js';
import type { ResolvedMigration } from '../resolved.js';
import { defaultCarryRefusal } from '../steps/carry-default.js';
import { forbiddenChanges, recordedMigration } from './definition.js';
import { grace, refuse, runTransition } from './transition.js';

/** The transitions that change the schema around their phase change: what each applies before and after it. */

export function expand(h: MigrationHandle, options: { signal?: AbortSignal } & TransitionOptions): Promise<TransitionDecision> {
  return runTransition(h, 'expand', {}, {
    cause: options.cause,
    before: async (r, row) => {
      // Remember before the DDL whether this migration creates the column, so that a crash between the two
      // cannot make rollback think the user made it (and leave it behind) — or drop a column the user made.
      if (!r.newColumnExists && !row.created_new_column) await h.pf.store.update(h.id, { created_new_column: true });
      await ops.expand(h.pf.ctx, r, options.signal);
    },
  });
}

export function startDualWrite(h: MigrationHandle, options: { acceptPreflightFailures?: boolean } & TransitionOptions): Promise<TransitionDecision> {
  if (options.acceptPreflightFailures !== undefined && typeof options.acceptPreflightFailures !== 'boolean') {
    throw new ValidationError('PF_INVALID_OPTIONS', `acceptPreflightFailures must be a boolean, not ${JSON.stringify(options.acceptPreflightFailures)}.`, {
      value: options.acceptPreflightFailures, migrationId: h.id, hint: 'Pass acceptPreflightFailures: true to accept the rows the preflight cannot derive.',
    });
  }
  return runTransition(h, 'dual-write', {}, {
    cause: options.cause,
    before: async (r) => {
      // Before the trigger goes live: rows the expression cannot derive are found now, not by the first
      // application write or the backfill.
      await preflightGate(h, r, options.acceptPreflightFailures === true);
      if (h.migration.sync.trigger) await ops.installSync(h.pf.ctx, r);
    },
  });
}

/** Runs the preflight, stores its result, and refuses dual-write while rows fail to derive, unless accepted. */
async function preflightGate(h: MigrationHandle, r: ResolvedMigration, accept: boolean): Promise<PreflightResult> {
  const result = await runPreflight(h.pf.ctx, r, { record: accept });
  await h.pf.store.update(h.id, { preflight_result: JSON.stringify(result) });
  if (result.failures > 0 && !accept) {
    const first = result.failedRows[0]!;
    await refuse(h, 'dual-write', 'expanded',
      `the preflight found ${result.failures} row(s) the backfill expression cannot derive (first key ${JSON.stringify(first.key)}, value ${JSON.stringify(first.oldValue)}: ${first.error})`,
      `Fix those rows or change the expression, or accept them: \`phaseflag dual-write ${h.id} --accept-preflight-failures\` (API: startDualWrite({ acceptPreflightFailures: true })); accepted rows stay NULL in the new column, are listed by status and block verified until fixed. \`phaseflag plan --preflight\` lists them.`,
      'PF_PREFLIGHT_FAILED');
  }
  return result;
}

export function stopDualWrite(h: MigrationHandle, options: TransitionOptions): Promise<TransitionDecision> {
  return runTransition(h, 'stop-dual-write', {}, { cause: options.cause, after: async (r) => ops.dropSync(h.pf.ctx, r) });
}

export async function contract(
  h: MigrationHandle, options: { confirm?: boolean; dropOldColumn?: boolean; signal?: AbortSignal } & TransitionOptions,
): Promise<TransitionDecision> {
  const dropOldColumn = options.dropOldColumn === true;
  if (dropOldColumn && h.migration.intent === 'derive') {
    const phase = (await h.pf.store.get(h.id))?.phase ?? 'pending';
    await refuse(h, 'contract', phase, `"${h.migration.newColumn.name}" is derived from "${h.migration.oldColumn}", which therefore stays`,
      'Contract without dropOldColumn (CLI: without --drop-old-column). To replace the column instead, declare intent: \'replace\' in a new migration.', 'PF_DERIVED_SOURCE_KEPT');
  }
  return runTransition(h, 'contract', { confirmed: options.confirm === true }, {
    cause: options.cause,
    // The old column may be NOT NULL: make it nullable while every writer still fills it, so that writers
    // that stop writing it after the phase change cannot fail. First, refuse when the old column's default would
    // be lost (see carry-default.ts): nothing has changed yet.
    before: async (r, row) => {
      const lost = defaultCarryRefusal(r, dropOldColumn);
      if (lost) await refuse(h, 'contract', row.phase, lost.reason, lost.hint, 'PF_DEFAULT_NOT_CARRIED');
      await ops.contractBefore(h.pf.ctx, r, options.signal);
    },
    after: async (r) => {
      await grace(h);
      await ops.contractAfter(h.pf.ctx, r, { dropOldColumn, signal: options.signal });
    },
  });
}

export async function rollback(h: MigrationHandle, options: { dropNewColumn?: boolean; signal?: AbortSignal } & TransitionOptions): Promise<TransitionDecision> {
  // Rollback undoes what the recorded declaration created, even when the declared one has changed since.
  const row = await h.pf.store.get(h.id);
  if (row !== null && forbiddenChanges(h, row).length > 0) {
    const recorded = new (h.constructor as new (pf: MigrationHandle['pf'], m: Migration) => MigrationHandle)(h.pf, recordedMigration(h, row));
    h.pf.ctx.logger.info(`phaseflag: ${h.id}: rolling back from the recorded declaration (the declared one changed: ${forbiddenChanges(h, row).join('; ')})`, { migrationId: h.id });
    return rollback(recorded, options);
  }
  return runTransition(h, 'rollback', {}, {
    cause: options.cause,
    extra: { rows_backfilled: 0, backfill_started_at: null, backfill_completed_at: null, verify_result: null, verified_at: null, reads_held_at: null },
    after: async (r, row) => {
      await grace(h);
      await ops.rollback(h.pf.ctx, r, { dropNewColumn: (options.dropNewColumn ?? true) && row.created_new_column, signal: options.signal });
      if ((options.dropNewColumn ?? true) && row.created_new_column) await h.pf.store.update(h.id, { created_new_column: false });
    },
  });
}
