import assert from 'node:assert/strict';
import { CONTROLLER_ATTR, SPAN, ATTR, defineMigration, type FlagSource } from '@phaseflag/core';
import { Phaseflag, type ControllerEvent, type Controller } from '@phaseflag/postgres';
import { provisionFlags } from '@phaseflag/unleash';
import {
  amountInput,
  captureSpans,
  createAmountTable,
  createSuiteSchema,
  holdsFor,
  startUnleash,
  waitFor,
  type Suite,
  type UnleashServer,
} from '@phaseflag/testkit';
import { createUnleashSource } from './fixtures/unleash-source.js';

/**
 * The controller refuses to advance a migration whose table drifted (PF_DRIFT), with a real unleash-server moving
 * the flags: the refusal is an event row, a span, a controller event and a line of its status, once; once the
 * table is repaired, the same flags carry the migration on.
 */
describe('the controller refuses to advance a drifted migration (PF_DRIFT) and proceeds once it is repaired', function () {
  this.timeout(180_000);
  const spans = captureSpans();
  const ENV = 'development';
  const id = 'drift-ctl';
  const table = 'orders_drift_ctl';
  const input = amountInput(id, table, {
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, index: true },
  });
  const m = defineMigration(input);
  let suite: Suite;
  let unleash: UnleashServer;
  let pf: Phaseflag;
  let flags: { source: FlagSource; close: () => Promise<void> };
  let controller: Controller;
  const events: ControllerEvent[] = [];

  before(async () => {
    suite = await createSuiteSchema('controller_drift');
    unleash = await startUnleash();
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema, pollIntervalMs: 200, graceMs: 0 });
    await pf.install();
    await createAmountTable(suite.knex, table, 2000);
    await provisionFlags(m, { url: unleash.url, token: unleash.adminToken, environment: ENV });
    flags = await createUnleashSource({
      url: unleash.url,
      token: unleash.clientToken,
      appName: 'phaseflag-drift',
      instanceId: 'drift-ctl',
      refreshIntervalMs: 300,
    });
    controller = pf.controller(m, {
      flags: flags.source,
      intervalMs: 300,
      instanceId: 'ctl-drift',
      onEvent: (e) => events.push(e),
    });
    await controller.start();
  });
  after(async () => {
    await controller?.stop();
    await flags?.close();
    await unleash?.stop();
    await pf?.close();
    await suite?.cleanup();
  });

  const phase = async () => (await pf.migration(m).status()).phase;

  it('in dual-write with its index dropped by hand, the backfill flag is refused with PF_DRIFT: event, span, status', async () => {
    await unleash.admin.enable(m.flags.dualWrite, ENV);
    await waitFor(async () => (await phase()) === 'dual-write', { timeoutMs: 30_000, description: 'dual-write' });
    await suite.knex.raw('DROP INDEX ??', [m.newColumn.index!.name]);
    spans.reset();

    await unleash.admin.enable(m.flags.backfill, ENV);
    await waitFor(() => events.some((e) => e.kind === 'refused' && e.code === 'PF_DRIFT'), {
      timeoutMs: 30_000,
      description: 'the PF_DRIFT refusal',
    });
    const refused = events.filter((e) => e.kind === 'refused');
    assert.equal(refused.length, 1);
    const r = refused[0]!;
    assert.ok(r.kind === 'refused');
    assert.deepEqual([r.action, r.phase, r.code, r.flag], ['backfill', 'dual-write', 'PF_DRIFT', m.flags.backfill]);
    assert.match(r.reason, new RegExp(`index "${m.newColumn.index!.name}" missing`));
    assert.match(r.hint, /phaseflag drift drift-ctl/);

    // Held: several passes later still dual-write, and still one refusal.
    await holdsFor(async () => (await phase()) === 'dual-write', 2000, { intervalMs: 200, description: 'held' });
    assert.equal(events.filter((e) => e.kind === 'refused').length, 1, 'once, not on every pass');

    const span = spans.byName(SPAN.refused).find((s) => s.attributes[CONTROLLER_ATTR.refusalCode] === 'PF_DRIFT');
    assert.ok(span, 'a refusal span with phaseflag.refusal.code = PF_DRIFT');
    assert.equal(span.attributes[ATTR.migrationId], id);
    assert.match(String(span.attributes[ATTR.reason]), /drifted/);

    const status = await pf.migration(m).status();
    const logged = status.events.filter((e) => e.kind === 'refused');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.detail?.code, 'PF_DRIFT');
    assert.equal(status.drift.blocking, true);
    assert.deepEqual(
      status.drift.findings.map((f) => [f.object, f.actual]),
      [['index', 'missing']],
    );
    const c = (await controller.reconcile())[0]!; // after a whole pass, not in the middle of one
    assert.equal(c.lastStep?.kind, 'refuse');
    assert.equal(c.lastStep?.kind === 'refuse' ? c.lastStep.code : null, 'PF_DRIFT');
    assert.equal(c.drift?.blocking, true);
  });

  it('repaired with the SQL the finding gives, the same flags carry it on to verified', async () => {
    const f = (await pf.migration(m).drift()).findings[0]!;
    assert.match(f.repair.sql!, /^CREATE INDEX CONCURRENTLY/);
    await suite.knex.raw(f.repair.sql!.replace(/;$/, ''));
    await waitFor(async () => (await phase()) === 'verified', {
      timeoutMs: 60_000,
      description: 'verified after repair',
    });
    assert.equal((await pf.migration(m).drift()).blocking, false);
    assert.equal(controller.status()[0]!.drift?.blocking, false);
    assert.ok(events.some((e) => e.kind === 'transition' && e.action === 'backfill'));
  });
});
