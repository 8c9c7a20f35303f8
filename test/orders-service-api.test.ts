import assert from 'node:assert/strict';
import { StaticFlagSource } from '@phaseflag/core';
import { createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import {
  migrations,
  seededCustomerEmail,
  seededOrder,
  startServer,
  type RunningServer,
  type ServiceEvent,
} from '@phaseflag/example-orders-service';

const ROWS = 1000;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The orders API in-process (as the demo embeds it), with flags set by code and the phases moved by hand through
 * the engine: what each answer looks like on either column, and what bad input gets.
 */
describe('orders-service API: same answers from the old and the new columns, bad input refused', function () {
  this.timeout(120_000);
  let suite: Suite;
  let server: RunningServer;
  const flags = new StaticFlagSource({
    [migrations.ordersAmount.flags.readNew]: false,
    [migrations.customersEmail.flags.readNew]: false,
  });
  const events: ServiceEvent[] = [];

  before(async () => {
    suite = await createSuiteSchema('orders_api', { pool: { min: 0, max: 2 } });
    server = await startServer({
      databaseUrl: suite.databaseUrl,
      dbSchema: suite.schema,
      stateSchema: suite.stateSchema,
      seedRows: ROWS,
      flags,
      controller: false,
      instanceId: 'api-test',
      logger: quiet,
      onEvent: (e) => events.push(e),
    });
  });

  after(async () => {
    await server?.close();
    await suite?.cleanup();
  });

  const call = async (method: string, path: string, body?: unknown, user = 'u-1') => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-user-id': user },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('serves seeded rows from the old columns, amounts as two-decimal strings and e-mails normalized', async () => {
    assert.equal(events[0]?.event, 'listening');
    const o = await call('GET', '/orders/37');
    assert.deepEqual(o, {
      status: 200,
      body: { id: 37, customerId: seededOrder(37, ROWS).customerId, amount: '13.69', readFrom: 'old' },
    });
    const c = await call('GET', '/customers/15');
    assert.equal(seededCustomerEmail(15), '  Customer.15@Example.COM ');
    assert.deepEqual(c, { status: 200, body: { id: 15, email: 'customer.15@example.com', readFrom: 'old' } });
  });

  it('refuses bad input with 4xx and a message, and changes nothing', async () => {
    for (const amount of ['12.345', '-1.00', '1e3', 12.5, '21474836.48', '']) {
      const r = await call('PATCH', '/orders/1', { amount });
      assert.equal(r.status, 400, `amount ${JSON.stringify(amount)}`);
      assert.match(String(r.body.error), /amount must be/);
    }
    assert.equal((await call('GET', '/orders/1')).body.amount, '0.37');
    assert.equal((await call('GET', '/orders/abc')).status, 400);
    assert.equal((await call('GET', '/orders/999999')).status, 404);
    assert.equal((await call('POST', '/orders', { customerId: 999999, amount: '1.00' })).status, 422);
    assert.equal((await call('POST', '/customers', { email: 'zoë@example.com' })).status, 400);
    assert.equal((await call('POST', '/customers', { email: 'no-at-sign' })).status, 400);
    assert.equal((await call('POST', '/orders', '{not json')).status, 400);
    assert.equal((await call('GET', '/nope')).status, 404);
  });

  it('gives the same answers from the new columns once the phase and the read-new flag allow it', async () => {
    const created = await call('POST', '/orders', { customerId: 3, amount: '12.3' });
    assert.equal(created.status, 201);
    const id = Number(created.body.id);
    const customer = Number((await call('POST', '/customers', { email: ' Mixed.Case@Example.ORG  ' })).body.id);

    for (const m of [migrations.ordersAmount, migrations.customersEmail]) {
      const h = server.pf.migration(m);
      await h.expand();
      await h.startDualWrite();
      await h.backfill();
      await h.verify();
      await h.readNew();
    }
    await waitForPhase('read-new');
    assert.equal((await call('GET', `/orders/${id}`)).body.readFrom, 'old', 'read-new flag still off');
    assert.deepEqual(
      server.migrations().map((v) => [v.phase, v.readsNew, v.writes.length]),
      [
        ['read-new', false, 2],
        ['read-new', false, 2],
      ],
    );

    flags.set(migrations.ordersAmount.flags.readNew, true);
    flags.set(migrations.customersEmail.flags.readNew, true);
    assert.deepEqual(await call('GET', `/orders/${id}`), {
      status: 200,
      body: { id, customerId: 3, amount: '12.30', readFrom: 'new' },
    });
    assert.deepEqual(await call('GET', `/customers/${customer}`), {
      status: 200,
      body: { id: customer, email: 'mixed.case@example.org', readFrom: 'new' },
    });
    assert.deepEqual((await call('GET', '/orders/37')).body, {
      id: 37,
      customerId: seededOrder(37, ROWS).customerId,
      amount: '13.69',
      readFrom: 'new',
    });

    // A write now fills both columns, through the router: the old path reads it back the same.
    await call('PATCH', `/orders/${id}`, { amount: '0.05' });
    const row = (
      await suite.knex.raw(`SELECT amount_cents, amount::text FROM ${suite.schema}.orders WHERE id = ?`, [id])
    ).rows[0];
    assert.deepEqual(row, { amount_cents: 5, amount: '0.05' });
    assert.ok(events.some((e) => e.event === 'phase' && e.migration === 'orders-amount' && e.phase === 'read-new'));
  });

  async function waitForPhase(phase: string): Promise<void> {
    await waitFor(() => server.migrations().every((v) => v.phase === phase), {
      timeoutMs: 5000,
      intervalMs: 25,
      description: phase,
    }).catch(() => undefined);
    assert.ok(
      server.migrations().every((v) => v.phase === phase),
      JSON.stringify(server.migrations()),
    );
  }
});
