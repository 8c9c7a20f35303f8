import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineMigration, type Logger } from '@phaseflag/core';
import { Phaseflag, type KnexRouter } from '@phaseflag/postgres';
import { UnleashFlagSource } from '@phaseflag/unleash';
import {
  amountInput,
  createAmountTable,
  createSuiteSchema,
  holdsFor,
  startUnleash,
  waitFor,
  type Suite,
  type UnleashServer,
} from '@phaseflag/testkit';
import { recordFinding, scaled } from './record.js';
import { FaultWriter } from './support/fault-writer.js';
import { wrongRows } from './support/fault-checks.js';

const SECTION = 'Unleash stopped, restarted and its Admin API failing';
const ROWS = scaled(5_000, 50_000);
const OUTAGES = scaled(1, 4);
const ENV = 'development';
const STALE_MS = 1_500;
const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('reliability: Unleash stopped and restarted, its Admin API failing', function () {
  let suite: Suite;
  let unleash: UnleashServer;
  let pf: Phaseflag;
  const sources: UnleashFlagSource[] = [];
  let writer: FaultWriter | undefined;

  before(async () => {
    suite = await createSuiteSchema('rel_unleash');
    unleash = await startUnleash();
    pf = new Phaseflag({
      knex: suite.knex,
      stateSchema: suite.stateSchema,
      pollIntervalMs: 100,
      graceMs: 50,
      logger: quiet,
    });
    await pf.install();
  });
  after(async () => {
    await writer?.stop();
    for (const s of sources) s.close();
    await pf?.close();
    await unleash?.stop();
    await suite?.cleanup();
  });

  async function source(name: string): Promise<UnleashFlagSource> {
    const s = new UnleashFlagSource({
      unleash: {
        url: `${unleash.url}/api`,
        appName: name,
        instanceId: name,
        environment: ENV,
        customHeaders: { Authorization: unleash.clientToken },
        refreshInterval: 300,
        disableMetrics: true,
        skipInstanceCountWarning: true,
        backupPath: mkdtempSync(join(tmpdir(), 'pf-rel-unleash-')),
      },
      staleAfterMs: STALE_MS,
      logger: quiet,
    });
    sources.push(s);
    assert.ok(await s.whenKnown(20_000), `Unleash answered ${name}`);
    return s;
  }

  it('moves nothing on unknown flags, serves old reads and both writes while Unleash is down, and continues after', async () => {
    const table = 'orders_unleash_fault';
    const id = `rel-unleash-${suite.schema.slice(-8)}`;
    await createAmountTable(suite.knex, table, ROWS);
    const input = amountInput(id, table, { batch: { size: 1000, targetBatchMs: 0 } });
    const names = defineMigration(input).flags;
    for (const flag of [names.dualWrite, names.backfill, names.readNew, names.contract]) {
      await unleash.admin.createFlag(flag);
      await unleash.admin.addFlexibleRollout(flag, ENV, { rollout: 100 });
    }
    const m = pf.migration(input);
    const phase = async () => (await m.status().catch(() => null))?.phase;
    const controller = pf.controller(m, {
      flags: await source('ctl'),
      instanceId: 'rel-ctl',
      intervalMs: 200,
      logger: quiet,
    });
    await controller.start();
    const service: KnexRouter = await m.router(await source('svc'));
    writer = new FaultWriter(suite.newKnex({ pool: { min: 0, max: 4 } }), table, ROWS);
    writer.start(2);

    // The rollout up to read-new, through the Admin API.
    for (const flag of [names.dualWrite, names.backfill]) await unleash.admin.enable(flag, ENV);
    await waitFor(async () => (await phase()) === 'verified', { timeoutMs: 120_000, description: 'verified' });
    await unleash.admin.enable(names.readNew, ENV);
    await waitFor(async () => (await phase()) === 'read-new' && service.decide({ userId: 'u1' }).read === 'new', {
      timeoutMs: 30_000,
      description: 'read-new applied by the service',
    });

    let failSafeMs = 0;
    let recoverMs = 0;
    let adminFailures = 0;
    let routedInserts = 0;
    for (let outage = 0; outage < OUTAGES; outage++) {
      await unleash.restart({
        whileDown: async () => {
          const down = Date.now();
          // Services fail safe: once the flags are unknown, reads go back to the old column, writes fill both.
          await waitFor(() => service.decide({ userId: 'u1' }).read === 'old', {
            timeoutMs: 15_000,
            description: 'the service reading old with Unleash down',
          });
          failSafeMs = Math.max(failSafeMs, Date.now() - down);
          const d = service.decide({ userId: 'u1' });
          assert.ok(d.writeOld && d.writeNew, 'both columns written while the flags are unknown');
          const row = service.row({ amount_cents: 4242 + outage }, { userId: 'u1' });
          const inserted = await suite
            .knex<{ amount_cents: number; amount: string }>(table)
            .insert(row)
            .returning(['amount_cents', 'amount']);
          assert.deepEqual(inserted[0], { amount_cents: 4242 + outage, amount: ((4242 + outage) / 100).toFixed(2) });
          routedInserts++;
          // The operator's contract toggle cannot reach Unleash: the Admin API fails, and nothing moves.
          await assert.rejects(unleash.admin.enable(names.contract, ENV));
          adminFailures++;
          await holdsFor(async () => (await phase()) === 'read-new', 2_000, { intervalMs: 100 });
          const last = controller.status()[0]?.lastStep as { kind: string; unknown?: string[] } | null;
          assert.equal(last?.kind, 'none', `the controller waits on unknown flags: ${JSON.stringify(last)}`);
          assert.ok((last?.unknown?.length ?? 0) > 0, `the flags are unknown to it: ${JSON.stringify(last)}`);
        },
      });
      const up = Date.now();
      await waitFor(() => service.decide({ userId: 'u1' }).read === 'new', {
        timeoutMs: 30_000,
        description: 'reads switched back once Unleash answers',
      });
      recoverMs = Math.max(recoverMs, Date.now() - up);
    }

    // The rollout continues: writes stop (contract drops the trigger), then the contract flag lands.
    await writer.stop();
    const report = await writer.report();
    assert.equal(report.lost, 0, 'acknowledged writes lost');
    const wrong = await wrongRows(suite.knex, table);
    assert.equal(wrong, 0);
    await unleash.admin.enable(names.contract, ENV);
    await waitFor(async () => (await phase()) === 'contracted', { timeoutMs: 30_000, description: 'contracted' });
    await controller.stop();
    await service.close();
    const transitions = (await m.status()).events.filter((e) => e.kind === 'transition').map((e) => e.action);
    assert.deepEqual(
      transitions.filter((a) => a === 'contract' || a === 'read-old'),
      ['contract'],
      `one contract and no read-old: ${transitions.join(', ')}`,
    );
    recordFinding({
      section: SECTION,
      line:
        `${OUTAGES} Unleash outage(s) in read-new (${ROWS.toLocaleString('en')} rows, ${report.writes} acknowledged ` +
        `writes meanwhile): the service read old within ${(failSafeMs / 1000).toFixed(1)} s (staleAfterMs ` +
        `${STALE_MS}) and wrote both columns (${routedInserts} routed inserts right), ${adminFailures} Admin API ` +
        `call(s) failed and no transition happened on unknown flags (read-new held, not read-old); reads were new again within ` +
        `${(recoverMs / 1000).toFixed(1)} s of Unleash's return and the contract flag then contracted; 0 writes lost, 0 wrong rows.`,
      figures: { outages: OUTAGES, rows: ROWS, writes: report.writes, failSafeMs, recoverMs, adminFailures },
    });
  });
});
