import { quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import { qualify } from '../../sql/text.js';
import { syncFunctionBody } from '../steps/sync-function.js';
import { createFunctionStatement, createTriggerStatement, syncFunctionName } from '../steps/sync-trigger.js';
import { readSyncTriggers, type SyncTriggerHalf } from '../steps/sync-trigger-state.js';
import type { Add, DriftSubject } from './subject.js';
import { readFunctionSource } from './live.js';

/**
 * The sync trigger's two halves (BEFORE UPDATE … WHEN, BEFORE INSERT) and their function, each compared with
 * what phaseflag writes for the declaration: present, enabled, events, function, the UPDATE half's WHEN clause,
 * and the function's body.
 */
export async function triggerFindings(knex: Knex, s: DriftSubject, add: Add): Promise<void> {
  const r = s.resolved;
  const fn = syncFunctionName(s);
  const t = qualify(s.schema, s.table);
  const halves = await readSyncTriggers(knex, s, s.stateSchema, r);
  const both = [halves.update, halves.insert];
  const recreate =
    r === null
      ? null
      : `${createFunctionStatement(r, { stateSchema: s.stateSchema }).sql};\n${createTriggerStatement(r, { stateSchema: s.stateSchema }).sql};`;
  const unresolved =
    r === null
      ? 'Resolve the declaration first (see the other findings); then recreate the trigger as `phaseflag plan` shows it.'
      : null;
  if (!s.expect.syncTrigger) {
    // After a contract of a replaced column the triggers are gone: they would keep writing the old column.
    if (s.phase === 'contracted' && s.migration.intent !== 'derive')
      for (const h of both.filter((x) => x.exists))
        add('sync trigger', h.name, 'removed (contract drops it)', h.enabled ? 'present, enabled' : 'present', {
          sql: `DROP TRIGGER IF EXISTS ${quoteIdent(h.name)} ON ${t};\nDROP FUNCTION IF EXISTS ${qualify(s.stateSchema, fn)}();`,
          note: 'ACCESS EXCLUSIVE, catalog only.',
        });
    return;
  }
  for (const h of both) {
    const expected = describe(h, `${s.stateSchema}.${fn}()`);
    if (!h.wanted) {
      if (h.exists)
        add('sync trigger', h.name, 'absent (no UPDATE has anything to sync)', 'present', {
          sql: recreate,
          note: unresolved,
        });
    } else if (!h.exists)
      add('sync trigger', h.name, expected, 'missing', {
        sql: recreate,
        note:
          unresolved ??
          'ACCESS EXCLUSIVE, catalog only. Rows written meanwhile were not synced: verify finds them, `phaseflag repair` re-derives them.',
      });
    else if (!h.matches || !h.sameWhen)
      add('sync trigger', h.name, expected, `present, but ${h.definition ?? 'another definition'}`, {
        sql: recreate,
        note: unresolved,
      });
    else if (!h.enabled)
      add('sync trigger', h.name, expected, 'disabled', {
        sql: `ALTER TABLE ${t} ENABLE TRIGGER ${quoteIdent(h.name)}`,
        note: 'ACCESS EXCLUSIVE, catalog only. Rows written while it was off were not synced: verify finds them, `phaseflag repair` re-derives them.',
      });
  }
  if (r === null) return;
  const source = await readFunctionSource(knex, s.stateSchema, fn);
  const body = syncFunctionBody(r, s.stateSchema);
  if (source === null)
    add('sync function', fn, 'the sync function phaseflag wrote', 'missing', {
      sql: recreate,
      note: 'The trigger cannot fire without it: every write to the table fails.',
    });
  else if (source !== body)
    add(
      'sync function',
      fn,
      'the body phaseflag writes for this declaration',
      'another body (edited by hand, or written by another version)',
      {
        sql: `${createFunctionStatement(r, { stateSchema: s.stateSchema }).sql};`,
        note: 'CREATE OR REPLACE FUNCTION takes no table lock.',
      },
    );
}

function describe(h: SyncTriggerHalf, fn: string): string {
  const when = h.expectedWhen ? ` WHEN (${h.expectedWhen})` : '';
  return `BEFORE ${h.events} FOR EACH ROW trigger "${h.name}"${when} calling ${fn}, enabled`;
}
