import assert from 'node:assert/strict';
import { createSuiteSchema, startUnleash, type Suite, type UnleashServer } from '@phaseflag/testkit';
import { describeError } from '../src/errors.js';
import { EXIT } from '../src/exit-codes.js';
import { flagsUnknownError } from '../src/runtime.js';
import { createOrders, ordersConfig, workdir, type Workdir } from './support.js';

describe('phaseflag CLI keeps secrets out of its output, and names a refused token', function () {
  this.timeout(180_000);
  let suite: Suite;
  let unleash: UnleashServer;
  let w: Workdir;
  const badToken = 'default:development.0123456789abcdef0123456789abcdef';

  before(async () => {
    suite = await createSuiteSchema('cli secrets');
    unleash = await startUnleash();
    w = workdir(suite, { UNLEASH_URL: unleash.url, UNLEASH_API_TOKEN: badToken });
    w.writeConfig(ordersConfig(suite.schema));
    await createOrders(suite, 10);
  });
  after(async () => {
    w?.remove();
    await unleash?.stop();
    await suite?.cleanup();
  });

  it('run with a client token Unleash does not know: PF_UNLEASH_REJECTED at once, saying which token and what to do', async () => {
    const started = performance.now();
    const r = await w.run(['run', 'orders-amount', '--json']);
    const took = performance.now() - started;
    assert.equal(r.code, EXIT.unavailable, r.stderr);
    const { error } = r.json();
    assert.equal(error.code, 'PF_UNLEASH_REJECTED');
    assert.match(error.message, /refused the client token \(401/);
    assert.ok(error.message.includes(unleash.url), error.message);
    assert.match(error.hint, /UNLEASH_API_TOKEN/);
    assert.match(error.hint, /backend \(client\) token/);
    assert.ok(took < 12_000, `answered after ${Math.round(took)} ms, not at the refusal`);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('0123456789abcdef'), r.stdout + r.stderr);
  });

  it('status with that token says the token was refused', async () => {
    const r = await w.run(['status', 'orders-amount']);
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(r.stderr, /refused the client token \(401/);
  });

  it('provision against a URL with a password shows the URL without it', async () => {
    const url = unleash.url.replace('://', '://ops:s3cret-pw@');
    const r = await w.run(['provision', 'orders-amount', '--json'], {
      env: { UNLEASH_URL: url, UNLEASH_ADMIN_TOKEN: unleash.adminToken },
    });
    assert.equal(r.code, EXIT.unavailable, r.stderr);
    assert.equal(r.json().error.code, 'PF_UNLEASH_UNAVAILABLE');
    assert.match(r.json().error.message, /ops:\*\*\*@/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('s3cret-pw'), r.stdout + r.stderr);
  });

  it('provision prints the URL it used without a credential query parameter', async () => {
    const r = await w.run(['provision', 'orders-amount'], {
      env: { UNLEASH_URL: `${unleash.url}/?api_key=sekrit-value`, UNLEASH_ADMIN_TOKEN: unleash.adminToken },
    });
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(r.stdout, /api_key=\*\*\*/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('sekrit-value'), r.stdout + r.stderr);
  });

  it('a 403 names a token that may not read this environment; no answer is PF_UNLEASH_UNAVAILABLE without the password', () => {
    const settings = {
      url: 'https://ops:s3cret-pw@unleash.example.com',
      apiToken: 'x',
      adminToken: undefined,
      project: 'default',
      environment: 'production',
    };
    const forbidden = flagsUnknownError(settings, { rejectedStatus: 403 }, 15_000);
    assert.equal(forbidden.code, 'PF_UNLEASH_REJECTED');
    assert.match(forbidden.message, /403/);
    assert.match(forbidden.hint, /environment "production"/);
    const silent = flagsUnknownError(settings, {}, 15_000);
    assert.equal(silent.code, 'PF_UNLEASH_UNAVAILABLE');
    assert.match(
      silent.message,
      /^Unleash at https:\/\/ops:\*\*\*@unleash\.example\.com did not answer within 15 s\.$/,
    );
    assert.ok(!JSON.stringify(silent).includes('s3cret-pw'));
    assert.ok(!JSON.stringify(forbidden).includes('s3cret-pw'));
  });

  it('an error that quotes a connection string is printed without its password', () => {
    const failure = Object.assign(new Error('connect to postgres://app:s3cret-pw@db.internal:5432/orders failed'), {
      code: 'ECONNREFUSED',
    });
    const report = describeError(failure);
    assert.equal(report.code, 'PF_DATABASE_UNAVAILABLE');
    assert.match(report.message, /postgres:\/\/app:\*\*\*@db\.internal:5432\/orders/);
  });
});
