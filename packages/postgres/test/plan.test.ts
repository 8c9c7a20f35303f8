import assert from 'node:assert/strict';
import { SPAN, defineMigration } from '@phaseflag/core';
import { planMigration } from '../src/operations/plan.js';
import { useStepsSuite } from './fixtures/steps-suite.js';
import { catalogSnapshot } from './support/catalog-snapshot.js';

describe("plan: every phase's statements, locks and lock waits, executing nothing", function () {
  const t = useStepsSuite('plan');
  const { spans, table } = t;

  it('lays out every phase with its exact SQL, lock and longest lock wait, as JSON, executing nothing', async () => {
    const { ctx, suite } = t;
    await table('planned', 100);
    await ctx.knex.raw('ALTER TABLE planned ALTER COLUMN note SET NOT NULL');
    const before = await catalogSnapshot(ctx.knex, [suite.schema, suite.stateSchema]);
    spans.reset();
    const plan = await planMigration(
      ctx,
      defineMigration({
        id: 'planned',
        table: 'planned',
        oldColumn: 'note',
        backfill: 'upper(note)',
        reverse: 'lower(note_v2)',
        newColumn: {
          name: 'note_v2',
          type: 'varchar(40)',
          nullable: false,
          index: { unique: true },
          check: 'length(note_v2) > 0',
          default: 'n/a',
        },
        ddl: { lockTimeoutMs: 500, maxAttempts: 4 },
      }),
      { dropOldColumn: true },
    );
    assert.deepEqual(await catalogSnapshot(ctx.knex, [suite.schema, suite.stateSchema]), before);
    assert.deepEqual(spans.byName(SPAN.ddl), []);
    assert.equal(spans.byName(SPAN.plan).length, 1);

    const json = JSON.parse(JSON.stringify(plan)) as typeof plan;
    assert.deepEqual(json, plan, 'survives JSON unchanged');
    assert.deepEqual(
      plan.phases.map((p) => p.phase),
      ['expand', 'dual-write', 'backfill', 'verify', 'read-new', 'contract', 'rollback'],
    );
    const steps = (phase: string) =>
      plan.phases.find((p) => p.phase === phase)!.statements.map((s) => `${s.step}: ${s.lock}`);
    assert.deepEqual(steps('expand'), [
      'add-column: ACCESS EXCLUSIVE',
      'create-index: SHARE UPDATE EXCLUSIVE',
      'create-index: SHARE UPDATE EXCLUSIVE',
      'add-check: ACCESS EXCLUSIVE',
      'add-check: SHARE UPDATE EXCLUSIVE',
    ]);
    assert.deepEqual(steps('dual-write'), ['sync-trigger: NONE', 'sync-trigger: ACCESS EXCLUSIVE']);
    assert.deepEqual(steps('backfill'), ['backfill-batch: ROW EXCLUSIVE']);
    assert.deepEqual(steps('verify'), ['verify: ACCESS SHARE']);
    assert.deepEqual(steps('read-new'), []);
    // The old column loses NOT NULL first even when it is dropped later: writers stop filling it at the phase
    // change, before the grace period ends and the column goes.
    assert.deepEqual(steps('contract'), [
      'drop-not-null: ACCESS EXCLUSIVE',
      'set-not-null: ACCESS EXCLUSIVE',
      'set-not-null: SHARE UPDATE EXCLUSIVE',
      'set-not-null: ACCESS EXCLUSIVE',
      'sync-trigger: ACCESS EXCLUSIVE',
      'sync-trigger: NONE',
      'drop-old-column: ACCESS EXCLUSIVE',
    ]);
    assert.deepEqual(steps('rollback'), [
      'sync-trigger: ACCESS EXCLUSIVE',
      'sync-trigger: NONE',
      'create-index: SHARE UPDATE EXCLUSIVE',
      'add-check: ACCESS EXCLUSIVE',
      'drop-new-column: ACCESS EXCLUSIVE',
    ]);
    const expand = plan.phases[0]!;
    assert.equal(
      expand.statements[0]!.sql,
      `ALTER TABLE "${suite.schema}"."planned" ADD COLUMN IF NOT EXISTS "note_v2" character varying(40) DEFAULT 'n/a'::character varying(40)`,
    );
    assert.equal(expand.statements[0]!.maxLockWaitMs, 2000);
    assert.equal(expand.statements[2]!.transactional, false);
    // SHARE UPDATE EXCLUSIVE statements wait up to nonBlockingLockTimeoutMs (default 60 s) per attempt.
    assert.equal(expand.statements[2]!.maxLockWaitMs, 60_000 * 4);
    assert.equal(expand.maxLockWaitMs, 2 * 2000 + 3 * 60_000 * 4);
    assert.equal(
      expand.maxBlockingLockWaitMs,
      2 * 2000,
      'only the ACCESS EXCLUSIVE statements wait ahead of application queries',
    );
    assert.equal(plan.phases[2]!.maxBlockingLockWaitMs, 0, 'a backfill batch (ROW EXCLUSIVE) never does');
    assert.equal(expand.strongestLock, 'ACCESS EXCLUSIVE');
    assert.match(
      plan.phases[2]!.statements[0]!.sql,
      /^UPDATE .* SET "note_v2" = \(\(\nupper\(note\)\n\)::character varying\(40\)\)/s,
    );
    assert.equal(plan.newColumn.type, 'character varying(40)');

    const keep = await planMigration(
      ctx,
      defineMigration({
        id: 'planned',
        table: 'planned',
        oldColumn: 'note',
        backfill: 'upper(note)',
        newColumn: { name: 'note_v2', type: 'text' },
      }),
    );
    assert.deepEqual(
      keep.phases
        .find((p) => p.phase === 'contract')!
        .statements.map((s) => s.sql.replace(/^ALTER TABLE \S+ /, '').split('\n')[0]),
      [
        'ALTER COLUMN "note" DROP NOT NULL',
        'DROP TRIGGER IF EXISTS "zz_pf_sync_planned" ON "' + suite.schema + '"."planned";',
        `DROP FUNCTION IF EXISTS "${suite.stateSchema}"."pf_sync_planned"()`,
      ],
    );
  });
});
