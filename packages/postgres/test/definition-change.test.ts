import assert from 'node:assert/strict';
import { defineMigration, isPhaseflagError, type MigrationInput } from '@phaseflag/core';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { Phaseflag } from '../src/phaseflag.js';
import { definitionChanges } from '../src/transitions/definition.js';

/**
 * A declaration edited while its migration is in flight (after a crash, say) is refused before anything runs, with
 * what changed; rollback works from the recorded declaration whatever is declared now.
 */
describe('a declaration changed while the migration is in flight', function () {
  this.timeout(60_000);
  let suite: Suite;

  const input: MigrationInput = {
    id: 'qty',
    table: 'items',
    oldColumn: 'qty_text',
    newColumn: { name: 'qty', type: 'integer', index: true, check: 'qty >= 0' },
    backfill: 'qty_text::integer',
    reverse: 'qty::text',
    batch: { size: 200, targetBatchMs: 0 },
  };
  const edited: MigrationInput = { ...input, backfill: 'qty_text::integer * 2', reverse: '(qty / 2)::text' };

  const tableShape = async () =>
    (
      await suite.knex.raw(
        `SELECT (SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped) AS columns,
            (SELECT array_agg(indexrelid::regclass::text ORDER BY 1) FROM pg_index WHERE indrelid = 'items'::regclass) AS indexes,
            (SELECT count(*)::int FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'c') AS checks,
            (SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal) AS triggers`,
      )
    ).rows[0];

  before(async () => {
    suite = await createSuiteSchema('definition_change');
    await suite.knex.raw(`CREATE TABLE items (id bigint PRIMARY KEY, qty_text text NOT NULL);
      INSERT INTO items SELECT g, (g % 50)::text FROM generate_series(1, 3000) g`);
  });
  after(async () => {
    await suite?.cleanup();
  });

  it('refuses the next backfill before any row changes, names each changed field, and rolls back from the recorded declaration', async () => {
    const before = await tableShape();
    const first = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, graceMs: 0 });
    await first.install();
    const m = first.migration(defineMigration(input));
    await m.expand();
    await m.startDualWrite();
    // The backfill stops midway (an abort here; a crash leaves the same state).
    const stop = new AbortController();
    const run = await m.backfill({
      signal: stop.signal,
      onProgress: (p) => {
        if (p.rowsDone >= 1000) stop.abort();
      },
    });
    assert.equal(run.completed, false);
    await first.close();

    // A new process with the edited declaration.
    const second = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, graceMs: 0 });
    const changed = second.migration(defineMigration(edited));
    const snapshot = async () =>
      (
        await suite.knex.raw(
          "SELECT md5(string_agg(id || ':' || coalesce(qty::text, '-'), ',' ORDER BY id)) AS h FROM items",
        )
      ).rows[0].h;
    const rowsBefore = await snapshot();
    const expectChanged = (e: unknown) => {
      assert.ok(isPhaseflagError(e, 'PF_DEFINITION_CHANGED'), String(e));
      assert.match(e.message, /backfill: "qty_text::integer" → "qty_text::integer \* 2"/);
      assert.match(e.message, /reverse: "qty::text" → "\(qty \/ 2\)::text"/);
      assert.match(e.hint, /roll back/);
      return true;
    };
    await assert.rejects(changed.backfill(), expectChanged);
    await assert.rejects(changed.runBackfill(), expectChanged);
    await assert.rejects(changed.verify(), expectChanged);
    assert.equal(await snapshot(), rowsBefore, 'no row changed');
    assert.equal((await changed.status()).phase, 'backfilling');

    await changed.rollback();
    assert.equal((await changed.status()).phase, 'rolled-back');
    assert.deepEqual(await tableShape(), before, 'the table is as it was before expand');

    // Rolled back, the new declaration may start over.
    await changed.expand();
    await changed.startDualWrite();
    assert.equal((await changed.backfill()).completed, true);
    const wrong = (
      await suite.knex.raw('SELECT count(*)::int AS n FROM items WHERE qty IS DISTINCT FROM qty_text::integer * 2')
    ).rows[0].n;
    assert.equal(wrong, 0);
    await second.close();
  });

  it('rolls back a migration whose declared type changed since expand, dropping exactly what expand created', async () => {
    await suite.knex.raw(
      `CREATE TABLE items2 (id bigint PRIMARY KEY, qty_text text NOT NULL); INSERT INTO items2 SELECT g, g::text FROM generate_series(1, 100) g`,
    );
    const pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, graceMs: 0 });
    const recorded = { ...input, id: 'qty2', table: 'items2' };
    await pf.migration(defineMigration(recorded)).expand();
    await pf.close();
    const later = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, graceMs: 0 });
    const m = later.migration(
      defineMigration({ ...recorded, newColumn: { ...recorded.newColumn, type: 'bigint', index: false } }),
    );
    await assert.rejects(
      m.startDualWrite(),
      (e: unknown) => isPhaseflagError(e, 'PF_DEFINITION_CHANGED') || isPhaseflagError(e, 'PF_COLUMN_TYPE_CONFLICT'),
    );
    await m.rollback();
    const left = (
      await suite.knex.raw(
        `SELECT (SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'items2'::regclass AND attnum > 0 AND NOT attisdropped) AS columns,
              (SELECT count(*)::int FROM pg_index WHERE indrelid = 'items2'::regclass) AS indexes`,
      )
    ).rows[0];
    assert.deepEqual(left, { columns: ['id', 'qty_text'], indexes: 1 });
    await later.close();
  });
});

describe('a definition recorded before newColumn.references existed', () => {
  it('compares equal to the same declaration now (references: null)', () => {
    const now = JSON.parse(
      JSON.stringify(
        defineMigration({ id: 'old', table: 'items', oldColumn: 'a', newColumn: { name: 'b', type: 'int' } }),
      ),
    ) as Record<string, unknown>;
    const { references, ...column } = now.newColumn as Record<string, unknown>;
    assert.equal(references, null);
    assert.deepEqual(definitionChanges({ ...now, newColumn: column }, now), []);
    const withKey = { ...now, newColumn: { ...column, references: { name: 'fk', column: 'id' } } };
    assert.deepEqual(definitionChanges(now, withKey).length, 1);
  });
});
