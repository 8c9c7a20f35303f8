import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { InMemoryProvider, OpenFeature, type EvaluationContext, type Provider } from '@openfeature/server-sdk';
import { Router, defineMigration, silentLogger } from '@phaseflag/core';
import { OpenFeatureFlagSource, toEvaluationContext } from '../src/index.js';
import { msUntil } from './support.js';

const FLAG = 'orders-amount.read-new';

/** read-new on for user u1 only, the way a flag service targets a user. */
const flagConfig = (onFor: string | null) => ({
  [FLAG]: {
    variants: { on: true, off: false },
    defaultVariant: 'off',
    disabled: false,
    contextEvaluator: (context: EvaluationContext) => (onFor !== null && context.targetingKey === onFor ? 'on' : 'off'),
  },
  'orders-amount.dual-write': { variants: { on: true, off: false }, defaultVariant: 'on', disabled: false },
  'orders-amount.contract': { variants: { on: true, off: false }, defaultVariant: 'on', disabled: true },
});

describe("OpenFeatureFlagSource on OpenFeature's in-memory provider", () => {
  const sources: OpenFeatureFlagSource[] = [];
  async function setUp(provider: Provider, wait = true): Promise<OpenFeatureFlagSource> {
    const domain = `phaseflag-${randomBytes(3).toString('hex')}`;
    if (wait) await OpenFeature.setProviderAndWait(domain, provider);
    else OpenFeature.setProvider(domain, provider);
    const source = new OpenFeatureFlagSource({ client: OpenFeature.getClient(domain), logger: silentLogger });
    sources.push(source);
    return source;
  }
  afterEach(async () => {
    for (const s of sources.splice(0)) s.close();
    await OpenFeature.clearProviders();
  });

  it('evaluates per request with targetingKey = userId, else sessionId', async () => {
    const source = await setUp(new InMemoryProvider(flagConfig('u1')));
    assert.equal(source.name, 'in-memory');
    assert.equal(await source.evaluate(FLAG, { userId: 'u1' }), true);
    assert.equal(await source.evaluate(FLAG, { userId: 'u2' }), false);
    assert.equal(await source.evaluate(FLAG, { sessionId: 'u1' }), true, 'sessionId when there is no userId');
    assert.equal(await source.evaluate('orders-amount.dual-write'), true);
    assert.equal(await source.evaluate('orders-amount.contract'), false, 'a disabled flag is off, not unknown');
    assert.deepEqual(toEvaluationContext({ userId: 'u1', remoteAddress: '10.0.0.1', properties: { tenant: 't1' } }), {
      tenant: 't1',
      targetingKey: 'u1',
      userId: 'u1',
      remoteAddress: '10.0.0.1',
    });
  });

  it('is unknown for a flag the provider does not have and for a provider that is not ready', async () => {
    const ready = await setUp(new InMemoryProvider(flagConfig('u1')));
    assert.equal(await ready.evaluate('no-such-flag', { userId: 'u1' }), undefined);
    assert.equal(
      ready.evaluationAttributes('no-such-flag', { userId: 'u1' }, undefined)['error.type'],
      'flag_not_found',
    );

    let finishInit: () => void = () => {};
    const slow = new InMemoryProvider(flagConfig('u1'));
    Object.assign(slow, {
      initialize: () =>
        new Promise<void>((resolve) => {
          finishInit = resolve;
        }),
    });
    const notReady = await setUp(slow, false);
    assert.equal(await notReady.evaluate(FLAG, { userId: 'u1' }), undefined, 'PROVIDER_NOT_READY');
    const changed: string[][] = [];
    notReady.onChange((names) => changed.push([...names]));
    finishInit();
    await msUntil(() => changed.length > 0, 2000, 'ready event');
    assert.equal(await notReady.evaluate(FLAG, { userId: 'u1' }), true);
  });

  it('isEnabled answers synchronously from the last evaluation: unknown (old column) for a first request, then the flag', async () => {
    const source = await setUp(new InMemoryProvider(flagConfig('u1')));
    assert.equal(
      source.isEnabled(FLAG, { userId: 'u1' }),
      undefined,
      'first request of this context: not evaluated yet',
    );
    await msUntil(() => source.isEnabled(FLAG, { userId: 'u1' }) === true, 1000, 'evaluated in the background');
    assert.equal(source.evaluationAttributes(FLAG, { userId: 'u1' }, true)['feature_flag.result.variant'], 'on');

    const migration = defineMigration({
      id: 'orders-amount',
      table: 'orders',
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)' },
      backfill: 'amount_cents::numeric / 100',
    });
    const router = new Router(migration, {
      flags: source,
      snapshot: { migrationId: migration.id, phase: 'read-new', version: 1 },
    });
    assert.equal(router.decide({ userId: 'u1' }).readColumn, 'amount');
    assert.equal(router.decide({ userId: 'u2' }).readColumn, 'amount_cents', 'unknown for u2 yet: old');
  });

  it('drops cached answers when the configuration changes, so turning read-new off is never served stale', async () => {
    const provider = new InMemoryProvider(flagConfig('u1'));
    const source = await setUp(provider);
    await source.evaluate(FLAG, { userId: 'u1' });
    assert.equal(source.isEnabled(FLAG, { userId: 'u1' }), true);
    const changed: string[][] = [];
    source.onChange((names) => changed.push([...names]));

    provider.putConfiguration(flagConfig(null));
    await msUntil(() => changed.some((names) => names.includes(FLAG)), 1000, 'configuration change event');
    assert.notEqual(source.isEnabled(FLAG, { userId: 'u1' }), true, 'the old answer is gone at once');
    await msUntil(() => source.isEnabled(FLAG, { userId: 'u1' }) === false, 1000, 'the new answer');
  });
});
