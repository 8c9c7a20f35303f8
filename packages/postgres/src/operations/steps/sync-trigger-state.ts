import type { Knex } from 'knex';
import { readTrigger, type TriggerState } from '../../catalog/state.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { conditionColumns, deparsedWhen, renderCondition, syncUpdateCondition } from './sync-when.js';
import { syncFunctionName, syncInsertTriggerName, syncTriggerName } from './sync-trigger-names.js';

/** One of the sync trigger's two halves (sync-trigger.ts) as the catalog has it. */
export interface SyncTriggerHalf extends TriggerState {
  readonly name: string;
  readonly events: 'INSERT' | 'UPDATE';
  /** Whether phaseflag writes this half for the declaration (the UPDATE half only when an UPDATE can sync). */
  readonly wanted: boolean;
  /** The WHEN clause phaseflag writes, as Postgres deparses it; unknown (undefined) without a resolved migration. */
  readonly expectedWhen?: string | null;
  /** `matches`, and the WHEN clause is the expected one (always true when it is unknown). */
  readonly sameWhen: boolean;
}

export interface SyncTriggerTarget {
  readonly migration: ResolvedMigration['migration'];
  readonly schema: string;
  readonly table: string;
}

/**
 * Both halves, each compared with what phaseflag writes: events, function, and the UPDATE half's WHEN clause,
 * the latter as text against `pg_get_triggerdef` with the column names quoted by Postgres's own quote_ident (the
 * condition is written in the deparsed form, see sync-when.ts). `resolved` null (a declaration that does not
 * resolve): the WHEN clause is not compared and both halves count as wanted.
 */
export async function readSyncTriggers(
  knex: Knex,
  target: SyncTriggerTarget,
  stateSchema: string,
  resolved: ResolvedMigration | null,
): Promise<{ update: SyncTriggerHalf; insert: SyncTriggerHalf }> {
  const fn = syncFunctionName(target);
  const [u, i] = await Promise.all([
    readTrigger(knex, target.schema, target.table, syncTriggerName(target), stateSchema, fn, 'UPDATE'),
    readTrigger(knex, target.schema, target.table, syncInsertTriggerName(target), stateSchema, fn, 'INSERT'),
  ]);
  const condition = resolved === null ? undefined : syncUpdateCondition(resolved);
  let expectedWhen: string | null | undefined;
  if (condition === null) expectedWhen = null;
  else if (condition !== undefined) {
    const names = [...new Set(conditionColumns(condition))];
    const quoted = new Map(
      (
        (await knex.raw('SELECT c, quote_ident(c) AS q FROM unnest(?::text[]) AS c', [names])).rows as {
          c: string;
          q: string;
        }[]
      ).map((x) => [x.c, x.q]),
    );
    expectedWhen = renderCondition(condition, (c) => quoted.get(c)!);
  }
  const liveWhen = u.definition === null ? null : deparsedWhen(u.definition);
  return {
    update: {
      ...u,
      name: syncTriggerName(target),
      events: 'UPDATE',
      wanted: condition !== null,
      expectedWhen,
      sameWhen: expectedWhen === undefined || liveWhen === expectedWhen,
    },
    insert: {
      ...i,
      name: syncInsertTriggerName(target),
      events: 'INSERT',
      wanted: true,
      expectedWhen: null,
      sameWhen: i.definition === null || deparsedWhen(i.definition) === null,
    },
  };
}

/** Every wanted half installed, enabled and as phaseflag writes it; no unwanted half left. */
export function syncTriggersInstalled(halves: { update: SyncTriggerHalf; insert: SyncTriggerHalf }): boolean {
  return [halves.update, halves.insert].every((h) =>
    h.wanted ? h.exists && h.enabled && h.matches && h.sameWhen : !h.exists,
  );
}
