import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Router, defineMigration, type PhaseSnapshot } from '@phaseflag/core';
import { startUnleash, type UnleashServer } from '@phaseflag/testkit';
import { UnleashFlagSource, destroyClient } from '../src/index.js';
import { ENV, clientConfig, msUntil, newClient, operatorFlag, quiet, summarize, closedPort } from './support.js';

describe('UnleashFlagSource against a real Unleash', () => {
  let server: UnleashServer;
  const sources: UnleashFlagSource[] = [];
  const track = (source: UnleashFlagSource) => (sources.push(source), source);
  before(async () => {
    server = await startUnleash();
  });
  afterEach(() => {
    for (const s of sources.splice(0)) s.close();
  });
  after(() => server?.stop());

  it('is unknown before the first fetch, and for a flag Unleash does not have', async () => {
    await operatorFlag(server, 'src.known');
    const source = track(new UnleashFlagSource({ unleash: clientConfig(server), ...quiet }));
    assert.equal(source.isEnabled('src.known', { userId: 'u1' }), undefined, 'nothing fetched yet');
    assert.equal(source.state('src.known'), undefined);
    assert.equal(source.status().known, false);

    assert.equal(await source.whenKnown(5000), true);
    // Unleash serves a new flag to clients once its revision job has run (about a second).
    await msUntil(() => source.isEnabled('src.known', { userId: 'u1' }) !== undefined, 5000, 'flag served');
    assert.equal(source.isEnabled('src.known', { userId: 'u1' }), true);
    assert.equal(source.isEnabled('src.no-such-flag', { userId: 'u1' }), undefined, 'unknown flag');
    assert.equal(source.state('src.no-such-flag'), undefined);
    assert.equal(source.status().origin, 'unleash');
  });

  it('stays unknown when Unleash never answers and there is no backup', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/api`;
    const source = track(new UnleashFlagSource({ unleash: { ...clientConfig(server), url }, ...quiet }));
    assert.equal(await source.whenKnown(1500), false);
    assert.equal(source.isEnabled('src.known'), undefined);
    assert.equal(source.state('src.known'), undefined);
    // unleash-client retries a refused poll (after 1 s, then 10 s) before it reports the failure; being unknown
    // does not wait for that report: no confirmed data is unknown.
    assert.equal(source.status().knownAsOf, undefined);
  });

  it("sees an operator's toggle in the Admin API within about two seconds at refreshInterval 1 s (measured)", async () => {
    const flag = 'src.toggle';
    await operatorFlag(server, flag, { on: false });
    const source = track(new UnleashFlagSource({ unleash: clientConfig(server), ...quiet }));
    await msUntil(() => source.isEnabled(flag) === false, 5000, 'flag served');
    const changes: string[][] = [];
    source.onChange((names) => changes.push([...names]));

    const samples: number[] = [];
    for (let i = 0; i < 4; i++) {
      for (const on of [true, false]) {
        // A random pause puts the toggle at a random point of the client's poll cycle and the revision job's.
        await sleep(Math.random() * 1000);
        const started = performance.now();
        await (on ? server.admin.enable(flag, ENV) : server.admin.disable(flag, ENV));
        await msUntil(() => source.isEnabled(flag, { userId: 'u1' }) === on, 10_000, `isEnabled → ${on}`);
        samples.push(Math.round(performance.now() - started));
      }
    }
    console.log(`      toggle → isEnabled flipped (refreshInterval 1 s): ${summarize(samples)}`);
    assert.ok(Math.max(...samples) < 5000, `every toggle applied within 5 s: ${samples.join(', ')}`);
    assert.ok(changes.filter((names) => names.includes(flag)).length >= 8, 'onChange named the flag at every toggle');
  });

  it('a 50% rollout sticky on userId splits 1000 users about evenly and stably; 100% keeps them, 0% gives none', async () => {
    const flag = 'src.rollout';
    const strategyId = await operatorFlag(server, flag, { rollout: 50, stickiness: 'userId' });
    const source = track(new UnleashFlagSource({ unleash: clientConfig(server), ...quiet }));
    assert.ok(await source.whenKnown(5000));
    const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    const onAt = () => new Set(users.filter((userId) => source.isEnabled(flag, { userId }) === true));

    await msUntil(() => onAt().size > 0, 5000, '50% rollout visible');
    const first = onAt();
    assert.ok(first.size > 430 && first.size < 570, `about half the users: ${first.size}`);
    assert.deepEqual(onAt(), first, 'the same users every time');
    assert.equal(
      source.isEnabled(flag, {}),
      false,
      'stickiness on userId: a request without one is not in the rollout',
    );
    assert.deepEqual(
      { ...source.state(flag), version: undefined },
      { enabled: true, fullyOn: false, version: undefined },
    );

    await server.admin.setRollout(flag, ENV, strategyId, 100);
    await msUntil(() => onAt().size === 1000, 10_000, '100% rollout visible');
    assert.equal(
      source.state(flag)!.fullyOn,
      false,
      'at 100% sticky on userId, requests without a userId still miss: not fully on',
    );

    await server.admin.setRollout(flag, ENV, strategyId, 0);
    await msUntil(() => onAt().size === 0, 10_000, '0% rollout visible');
    assert.equal(source.state(flag)!.enabled, true, 'the flag is on, with nobody in its rollout');
  });

  it('state(): fully on only for a 100% rollout that admits every request; version changes with the flag', async () => {
    const flag = 'src.state';
    const strategyId = await operatorFlag(server, flag, { rollout: 100, on: false });
    const source = track(new UnleashFlagSource({ unleash: clientConfig(server), ...quiet }));
    await msUntil(() => source.state(flag) !== undefined, 5000, 'flag served');
    const off = source.state(flag)!;
    assert.equal(off.enabled, false);
    assert.equal(off.fullyOn, false);

    await server.admin.enable(flag, ENV);
    await msUntil(() => source.state(flag)?.enabled === true, 10_000, 'flag on');
    assert.equal(source.state(flag)!.fullyOn, true, 'stickiness default at 100%');
    assert.notEqual(source.state(flag)!.version, off.version);

    await server.admin.setRollout(flag, ENV, strategyId, 99);
    await msUntil(() => source.state(flag)?.fullyOn === false, 10_000, 'rollout 99%');
  });

  it('gives OpenTelemetry feature-flag attributes for an evaluation, with the current names only', async () => {
    const flag = 'src.attrs';
    await operatorFlag(server, flag, { rollout: 100 });
    const source = track(new UnleashFlagSource({ unleash: clientConfig(server), ...quiet }));
    await msUntil(() => source.isEnabled(flag, { userId: 'u7' }) !== undefined, 5000, 'flag served');
    const value = source.isEnabled(flag, { userId: 'u7' });
    const attributes = source.evaluationAttributes(flag, { userId: 'u7' }, value);
    assert.deepEqual(attributes, {
      'feature_flag.key': flag,
      'feature_flag.provider.name': 'unleash',
      'feature_flag.context.id': 'u7',
      'feature_flag.result.value': true,
      'feature_flag.result.reason': 'static',
      'feature_flag.version': source.state(flag)!.version,
      'feature_flag.set.id': 'default',
    });
    assert.ok(!('feature_flag.provider_name' in attributes) && !('feature_flag.variant' in attributes));
    const missing = source.evaluationAttributes('src.nope', { sessionId: 's1' }, undefined);
    assert.equal(missing['feature_flag.context.id'], 's1');
    assert.equal(missing['error.type'], 'flag_not_found');
  });

  it("drives the router: read-new on for a user moves that user's reads to the new column, unknown reads old", async () => {
    const migration = defineMigration({
      id: 'src-router',
      table: 'orders',
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)' },
      backfill: 'amount_cents::numeric / 100',
    });
    await operatorFlag(server, migration.flags.readNew, { rollout: 100 });
    const source = track(new UnleashFlagSource({ client: newClient(server), refreshIntervalMs: 1000, ...quiet }));
    const snapshot: PhaseSnapshot = { migrationId: migration.id, phase: 'read-new', version: 7 };
    const router = new Router(migration, { flags: source, snapshot });
    assert.equal(router.decide({ userId: 'u1' }).readColumn, 'amount_cents', 'unknown before the first fetch: old');
    await msUntil(() => router.decide({ userId: 'u1' }).readColumn === 'amount', 5000, 'read-new applied');
    assert.equal(router.decide({}).readColumn, 'amount', 'fully on: every request');
    destroyClient(source.client);
  });
});
