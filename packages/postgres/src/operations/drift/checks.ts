import { quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import { readConstraint, readIndexState } from '../../catalog/state.js';
import { embed, qualify } from '../../sql/text.js';
import { readColumns, readForeignKey, storedDefault } from './live.js';
import { triggerFindings } from './trigger-checks.js';
import type { DriftFinding, DriftObject, DriftRepair } from './types.js';
import type { Add, DriftSubject } from './subject.js';

export type { DriftSubject };

const repair = (r: Partial<DriftRepair>): DriftRepair => ({ command: null, sql: null, note: null, ...r });

/** Each object the phase implies, compared with the live catalog; the findings in the order of the objects. */
export async function catalogFindings(knex: Knex, s: DriftSubject): Promise<DriftFinding[]> {
  const m = s.migration;
  const out: DriftFinding[] = [];
  // After contract nothing moves on, so nothing found there holds a step back.
  const blocking = s.phase !== 'contracted';
  const add = (object: DriftObject, name: string, expected: string, actual: string, fix: Partial<DriftRepair>) =>
    out.push({ object, name, expected, actual, repair: repair(fix), blocking });
  const t = qualify(s.schema, s.table);
  const id = m.id;
  const col = m.newColumn.name;
  const names = [col, ...(m.oldColumn === null ? [] : [m.oldColumn])];
  const live = await readColumns(knex, s.schema, s.table, names);

  const newCol = live.get(col);
  if (s.expect.newColumn) {
    if (!newCol) {
      add('new column', col, `column "${col}" ${s.newColumnType ?? m.newColumn.type} (expand added it)`, 'missing', {
        command: s.phase === 'contracted' ? null : `phaseflag rollback ${id} && phaseflag expand ${id}`,
        note:
          s.phase === 'contracted'
            ? 'The migration is contracted and its new column is gone: restore it from a backup.'
            : 'The column was dropped by hand: roll the migration back and start it again (its values are derived anew).',
      });
    } else {
      if (s.newColumnType !== null && newCol.type !== s.newColumnType) {
        // Postgres refuses to retype a column the sync trigger's WHEN clause names: a column retyped by hand
        // lost its trigger first, found below; recreate it once the type is back (the declaration resolves again).
        add('new column', col, `type ${s.newColumnType}`, `type ${newCol.type}`, {
          sql: `ALTER TABLE ${t} ALTER COLUMN ${quoteIdent(col)} TYPE ${s.newColumnType} USING ${quoteIdent(col)}::${s.newColumnType}`,
          command: ['backfilled', 'verified', 'read-new'].includes(s.phase) ? `phaseflag verify ${id}` : null,
          note: 'ACCESS EXCLUSIVE for a full table rewrite (reads and writes wait): run it in a quiet window; values the cast changes are found by verify.',
        });
      }
      if (s.expect.newColumnNotNull && !newCol.notNull) {
        add('new column', col, 'NOT NULL (contract set it)', 'nullable', {
          sql: `ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(`${col}_not_null`)} CHECK (${quoteIdent(col)} IS NOT NULL) NOT VALID;\nALTER TABLE ${t} VALIDATE CONSTRAINT ${quoteIdent(`${col}_not_null`)};\nALTER TABLE ${t} ALTER COLUMN ${quoteIdent(col)} SET NOT NULL;\nALTER TABLE ${t} DROP CONSTRAINT ${quoteIdent(`${col}_not_null`)};`,
          note: 'The validated check lets SET NOT NULL skip its scan (ACCESS EXCLUSIVE, catalog only); VALIDATE scans under SHARE UPDATE EXCLUSIVE.',
        });
      }
      if (!s.expect.newColumnNotNull && s.createdNewColumn && newCol.notNull && s.phase !== 'contracted') {
        add('new column', col, 'nullable until contract (writers that do not fill it must not fail)', 'NOT NULL', {
          sql: `ALTER TABLE ${t} ALTER COLUMN ${quoteIdent(col)} DROP NOT NULL`,
          note: 'ACCESS EXCLUSIVE, catalog only.',
        });
      }
      await defaultFinding(knex, s, newCol.default, add);
    }
    await indexFinding(knex, s, add);
    await checkFinding(knex, s, add);
  }
  if (s.expect.foreignKey && m.newColumn.references) await foreignKeyFinding(knex, s, add);
  await triggerFindings(knex, s, add);

  if (m.oldColumn !== null) {
    const old = live.get(m.oldColumn);
    if (s.expect.oldColumn === 'present' && !old) {
      add('old column', m.oldColumn, `column "${m.oldColumn}" (until contract drops it)`, 'missing', {
        command: `phaseflag rollback ${id}`,
        note: 'The old column was dropped by hand before contract: its values are gone. Restore it from a backup before anything reads it again; services still read it until read-new.',
      });
    } else if (s.expect.oldColumn === 'absent' && old) {
      add(
        'old column',
        m.oldColumn,
        'dropped (contract dropped it, as the state store records)',
        `present, ${old.type}`,
        {
          sql: `ALTER TABLE ${t} DROP COLUMN IF EXISTS ${quoteIdent(m.oldColumn)}`,
          note: 'Re-added by hand after contract dropped it: drop it again once nothing uses it (ACCESS EXCLUSIVE, catalog only).',
        },
      );
    }
  }
  return out;
}

async function defaultFinding(knex: Knex, s: DriftSubject, live: string | null, add: Add): Promise<void> {
  const r = s.resolved;
  if (r === null) return;
  const col = s.migration.newColumn.name;
  const t = qualify(s.schema, s.table);
  if (r.newColumnDefaultSql !== null) {
    const expected = await storedDefault(knex, r.newColumnType, r.newColumnDefaultSql);
    if (live !== expected)
      add('new column', col, `DEFAULT ${expected}`, live === null ? 'no default' : `DEFAULT ${live}`, {
        sql: `ALTER TABLE ${t} ALTER COLUMN ${quoteIdent(col)} SET DEFAULT ${r.newColumnDefaultSql}`,
        note: 'ACCESS EXCLUSIVE, catalog only.',
      });
  } else if (live !== null && s.phase !== 'contracted') {
    // The sync trigger counts a value equal to the declared default as "not given": another default would be kept
    // as if a writer had set it, instead of being derived.
    add('new column', col, 'no default (none declared)', `DEFAULT ${live}`, {
      sql: `ALTER TABLE ${t} ALTER COLUMN ${quoteIdent(col)} DROP DEFAULT`,
      note: 'ACCESS EXCLUSIVE, catalog only.',
    });
  }
}

async function indexFinding(knex: Knex, s: DriftSubject, add: Add): Promise<void> {
  const index = s.migration.newColumn.index;
  if (!index) return;
  const col = s.migration.newColumn.name;
  const state = await readIndexState(knex, s.schema, s.table, index.name, col, index.unique);
  if (state.kind === 'ours' && state.valid) return;
  const create = `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${quoteIdent(index.name)} ON ${qualify(s.schema, s.table)} (${quoteIdent(col)})`;
  const drop = `DROP INDEX CONCURRENTLY IF EXISTS ${qualify(s.schema, index.name)}`;
  const expected = `${index.unique ? 'unique ' : ''}index "${index.name}" on (${col}), valid`;
  const note = 'Outside a transaction; SHARE UPDATE EXCLUSIVE: reads and writes continue while it builds.';
  if (state.kind === 'missing') add('index', index.name, expected, 'missing', { sql: `${create};`, note });
  else if (state.kind === 'ours')
    add('index', index.name, expected, 'INVALID (a build that failed)', { sql: `${drop};\n${create};`, note });
  else add('index', index.name, expected, state.detail, { sql: `${drop};\n${create};`, note });
}

async function checkFinding(knex: Knex, s: DriftSubject, add: Add): Promise<void> {
  const check = s.migration.newColumn.check;
  if (!check) return;
  const t = qualify(s.schema, s.table);
  const state = await readConstraint(knex, s.schema, s.table, check.name);
  const expected = `check "${check.name}", validated`;
  const validate = `ALTER TABLE ${t} VALIDATE CONSTRAINT ${quoteIdent(check.name)}`;
  const note = 'VALIDATE scans the table under SHARE UPDATE EXCLUSIVE: reads and writes continue.';
  if (state.kind === 'missing')
    add('check', check.name, expected, 'missing', {
      sql: `ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(check.name)} CHECK ${embed(check.expression)} NOT VALID;\n${validate};`,
      note: `ADD … NOT VALID takes ACCESS EXCLUSIVE for a catalog change only. ${note}`,
    });
  else if (state.kind === 'foreign')
    add('check', check.name, expected, state.detail, {
      note: 'Another object took the name: rename or drop it, then add the check.',
    });
  else if (!state.validated)
    add('check', check.name, expected, 'NOT VALID (existing rows not checked)', { sql: `${validate};`, note });
}

async function foreignKeyFinding(knex: Knex, s: DriftSubject, add: Add): Promise<void> {
  const ref = s.migration.newColumn.references!;
  const t = qualify(s.schema, s.table);
  const fk = await readForeignKey(knex, s.schema, s.table, ref.name);
  const target = `${ref.table.schema ?? s.schema}.${ref.table.name}(${ref.column})`;
  const expected = `foreign key "${ref.name}" to ${target}, validated (verify added it)`;
  const validate = `ALTER TABLE ${t} VALIDATE CONSTRAINT ${quoteIdent(ref.name)}`;
  if (fk.kind === 'missing')
    add('foreign key', ref.name, expected, 'missing', {
      sql: `ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(ref.name)} FOREIGN KEY (${quoteIdent(s.migration.newColumn.name)}) REFERENCES ${qualify(ref.table.schema ?? s.schema, ref.table.name)} (${quoteIdent(ref.column)}) ON DELETE ${ref.onDelete.toUpperCase()} NOT VALID;\n${validate};`,
      note: 'ADD … NOT VALID is a catalog change (SHARE ROW EXCLUSIVE on both tables); VALIDATE scans under SHARE UPDATE EXCLUSIVE.',
    });
  else if (!fk.foreignKey)
    add('foreign key', ref.name, expected, `another constraint: ${fk.definition}`, {
      note: 'Another constraint took the name: rename or drop it.',
    });
  else if (!fk.validated)
    add('foreign key', ref.name, expected, 'NOT VALID', {
      sql: `${validate};`,
      note: 'VALIDATE scans under SHARE UPDATE EXCLUSIVE: reads and writes continue.',
    });
}
