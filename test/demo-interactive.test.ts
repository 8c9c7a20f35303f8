import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import type { Page } from 'playwright-core';
import {
  launchChromium,
  resolveDatabase,
  waitFor,
  type ChromiumSession,
  type ResolvedDatabase,
} from '@phaseflag/testkit';
import { DemoProcess, portAnswers, printedPorts } from './fixtures/demo-process.js';

/**
 * `npm run demo -- --interactive`, driven as a person drives it: in Unleash's own web UI, in a real (headless)
 * Chromium. read-new is switched on too early — the services refuse and keep reading the old column — then off,
 * dual-write and backfill on, and once verify has passed read-new is rolled out to 100% with the strategy's slider
 * and switched on: the services read the new column. The demo runs on DATABASE_URL here (the other demo test
 * covers the embedded default), so it must also drop the databases it created on that server.
 */
describe("the interactive demo (npm run demo -- --interactive) in Unleash's web UI", function () {
  this.timeout(240_000);
  let db: ResolvedDatabase;
  let demo: DemoProcess | undefined;
  let browser: ChromiumSession | undefined;

  before(async () => {
    db = await resolveDatabase();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && browser) {
      const dir = mkdtempSync(join(tmpdir(), 'phaseflag-demo-ui-'));
      await browser.page.screenshot({ path: join(dir, 'failure.png'), fullPage: true }).catch(() => undefined);
      console.error(`screenshot of the UI at the failure: ${join(dir, 'failure.png')} (page ${browser.page.url()})`);
    }
    await browser?.close();
    await demo?.kill();
  });
  after(() => db.release());

  it('refuses read-new switched on before verify, and reads the new column once it is switched on after', async () => {
    demo = DemoProcess.start(['--interactive', '--rows', '2000'], {
      via: 'node',
      env: { DATABASE_URL: db.connectionString },
    });
    const ui = await demo.waitForLine(
      /Unleash UI\s+(http:\/\/127\.0\.0\.1:\d+)\/projects\/default\s+login (\S+) \/ (\S+)/,
      120_000,
    );
    const [, unleashUrl, username, password] = ui;
    const services = [1, 2].map((n) =>
      demo!.lines
        .map((l) => new RegExp(`^\\s+orders-${n}\\s+(http://127\\.0\\.0\\.1:\\d+)/phaseflag`).exec(l)?.[1])
        .find(Boolean)!,
    );
    assert.ok(services.every(Boolean), `both service addresses printed\n${demo.transcript()}`);

    browser = await launchChromium();
    const page = browser.page;
    await page.goto(`${unleashUrl}/login`);
    await page.fill('#username', username!);
    await page.fill('#password', password!);
    await page.click('button[type=submit]');
    await page.waitForURL((url) => !url.pathname.startsWith('/login'), { timeout: 30_000 });

    // Too early: read-new on while nothing has been expanded, let alone verified.
    await setSwitch(page, unleashUrl!, 'orders-amount.read-new', true);
    await demo.waitForLine(/orders-amount: REFUSED read-new: .*verif/i, 30_000);
    for (const url of services) {
      const view = await migrationView(url);
      assert.equal(view.phase, 'pending');
      assert.equal(view.readsNew, false);
      assert.deepEqual(await readsFrom(url), ['old']);
    }
    await setSwitch(page, unleashUrl!, 'orders-amount.read-new', false);

    // The right order, in the same list: dual-write, backfill; verify follows by itself.
    await setSwitch(page, unleashUrl!, 'orders-amount.dual-write', true);
    await demo.waitForLine(/orders-amount: phase dual-write/, 30_000);
    await setSwitch(page, unleashUrl!, 'orders-amount.backfill', true);
    await demo.waitForLine(/orders-amount: phase verified/, 60_000);
    for (const url of services) assert.deepEqual(await readsFrom(url), ['old'], 'verified alone moves no read');

    // Now read-new: its gradual rollout (provisioned at 0%) to 100% with the slider, then the switch.
    await setRollout(page, unleashUrl!, 'orders-amount.read-new', 100);
    await setSwitch(page, unleashUrl!, 'orders-amount.read-new', true);
    await demo.waitForLine(/orders-amount: phase read-new/, 30_000);
    for (const url of services) {
      await waitFor(async () => (await migrationView(url)).readsNew === true, {
        timeoutMs: 30_000,
        description: `${url} to read new for everyone`,
      });
      assert.equal((await migrationView(url)).phase, 'read-new');
      await waitFor(async () => (await readsFrom(url)).join() === 'new', {
        timeoutMs: 10_000,
        description: `${url} to serve reads from the new column`,
      });
    }

    // Ctrl-C: everything stops, the load saw no failure, nothing is left on the server or the machine.
    const unleashDb = demo.stderr.map((l) => /unleash: .*\(database (unleash_[0-9a-f]+)/.exec(l)?.[1]).find(Boolean);
    demo.child.kill('SIGINT');
    const { code } = await demo.exited;
    assert.equal(code, 0, `exit code after Ctrl-C\n${demo.transcript()}`);
    assert.match(demo.lines.join('\n'), /load: [\d,]+ requests, 0 failed/);
    assert.deepEqual(demo.leftoverProcesses(), []);
    for (const port of printedPorts(demo.lines).filter((p) => !db.connectionString.includes(`:${p}/`))) {
      assert.equal(await portAnswers(port), false, `port ${port} still answers`);
    }
    const admin = knexFactory({ client: 'pg', connection: db.connectionString, pool: { min: 0, max: 1 } });
    try {
      const left = await admin('pg_database')
        .select('datname')
        .where('datname', 'like', 'phaseflag_demo_%')
        .orWhere('datname', unleashDb ?? '-');
      assert.deepEqual(left, [], 'the demo dropped the databases it created');
    } finally {
      await admin.destroy();
    }
  });
});

/**
 * The flag's switch for environment "development" in the project's flag list, clicked until it shows `on`. A click
 * that lands while the list re-renders can be lost; then the page is loaded again and the state read afresh before
 * another click, so a late click is never doubled.
 */
async function setSwitch(page: Page, unleashUrl: string, flag: string, on: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1 || !page.url().endsWith('/projects/default')) await page.goto(`${unleashUrl}/projects/default`);
    const toggle = page.locator('tr', { hasText: flag }).locator('input[aria-label="development"]');
    await toggle.waitFor({ state: 'attached', timeout: 30_000 });
    if ((await toggle.isChecked()) === on) return;
    await toggle.click();
    try {
      await waitFor(async () => (await toggle.isChecked()) === on, {
        timeoutMs: 5_000,
        description: `${flag} to show ${on ? 'on' : 'off'} in the list`,
      });
      return;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

/** The flag page → the development environment's gradual rollout → edit → the slider to `percent` → save. */
async function setRollout(page: Page, unleashUrl: string, flag: string, percent: number): Promise<void> {
  await page.goto(`${unleashUrl}/projects/default/features/${encodeURIComponent(flag)}`);
  const env = page.getByTestId('FEATURE_ENVIRONMENT_ACCORDION_development');
  await env.getByText('1 strategy added').click();
  await page.getByTestId('STRATEGY_EDIT-flexibleRollout').click();
  const slider = page.getByTestId('ROLLOUT_SLIDER_ID').locator('input[type=range]');
  await slider.focus();
  // The keyboard moves a MUI slider as a person's arrow keys would: End is 100%, then step down.
  await slider.press('End');
  for (let v = 100; v > percent; v--) await slider.press('ArrowLeft');
  assert.equal(await slider.getAttribute('aria-valuenow'), String(percent));
  await page.getByTestId('STRATEGY_FORM_SUBMIT_ID').click();
  await page.waitForURL((url) => !url.pathname.includes('/strategies/edit'), { timeout: 30_000 });
}

async function migrationView(
  serviceUrl: string,
): Promise<{ id: string; phase: string; readsNew: boolean | 'partial' }> {
  const body = (await (await fetch(`${serviceUrl}/phaseflag`)).json()) as {
    migrations: Array<{ id: string; phase: string; readsNew: boolean | 'partial' }>;
  };
  return body.migrations.find((m) => m.id === 'orders-amount')!;
}

/** The distinct columns seeded orders are read from, for a handful of users. */
async function readsFrom(serviceUrl: string): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 1; i <= 10; i++) {
    const response = await fetch(`${serviceUrl}/orders/${i}`, { headers: { 'x-user-id': `u-${i}` } });
    assert.equal(response.status, 200);
    seen.add(((await response.json()) as { readFrom: string }).readFrom);
  }
  return [...seen].sort();
}
