import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { TestkitError, messageOf } from '../errors.js';

/** Where Debian (and Ubuntu's non-snap builds) put the browser. `PHASEFLAG_CHROMIUM` names another one. */
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/**
 * Flags for a browser that talks only to the loopback servers under test: no GPU on CI, no sandbox as root, and
 * none of Chromium's own traffic (updates, sync, field trials) leaving the machine.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** The system Chromium's path, or undefined when none is installed. */
export function findChromium(): string | undefined {
  const named = process.env.PHASEFLAG_CHROMIUM;
  if (named) return existsSync(named) ? named : undefined;
  return CANDIDATES.find((path) => existsSync(path));
}

/**
 * The system Chromium, installed from Debian's packages when it is missing and we are root (as in CI). Never a
 * browser download of Playwright's own: playwright-core drives the distribution's build.
 */
export function ensureChromium(): string {
  const found = findChromium();
  if (found) return found;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root && existsSync('/usr/bin/apt-get')) {
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'ignore', env, timeout: 600_000 });
    } catch (error) {
      throw new TestkitError(
        'PF_TESTKIT_NO_CHROMIUM',
        `apt-get could not install chromium: ${messageOf(error)}`,
        'Install it by hand (`apt-get install -y chromium`) or set PHASEFLAG_CHROMIUM to a Chromium binary.',
        { cause: error },
      );
    }
    const installed = findChromium();
    if (installed) return installed;
  }
  throw new TestkitError(
    'PF_TESTKIT_NO_CHROMIUM',
    `No Chromium at ${CANDIDATES.join(' or ')}${process.env.PHASEFLAG_CHROMIUM ? ` or ${process.env.PHASEFLAG_CHROMIUM}` : ''}.`,
    "Install Debian's package (`sudo apt-get install -y chromium`) or set PHASEFLAG_CHROMIUM to a Chromium binary.",
  );
}

export interface ChromiumSession {
  readonly context: BrowserContext;
  readonly page: Page;
  /** The fresh profile directory, removed by close(). */
  readonly userDataDir: string;
  /** Closes the browser and removes its profile. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the system Chromium headless with a fresh profile through playwright-core and opens one page. Each
 * session is a new browser process: nothing (cookies, cache) carries over between tests.
 */
export async function launchChromium(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<ChromiumSession> {
  const executablePath = ensureChromium();
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch (error) {
    throw new TestkitError(
      'PF_TESTKIT_NO_PLAYWRIGHT',
      `playwright-core could not be loaded: ${messageOf(error)}`,
      'Run `npm install` at the repository root (playwright-core is a dependency of @phaseflag/testkit).',
      { cause: error },
    );
  }
  const userDataDir = await mkdtemp(join(tmpdir(), 'phaseflag-chromium-'));
  let context: BrowserContext;
  try {
    context = await playwright.chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: options.viewport ?? { width: 1440, height: 1000 },
      timeout: 60_000,
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw new TestkitError(
      'PF_TESTKIT_CHROMIUM_START',
      `Chromium (${executablePath}) did not start: ${messageOf(error)}`,
      'Run it by hand with --headless --no-sandbox --dump-dom about:blank to see why.',
      { cause: error },
    );
  }
  const page = context.pages()[0] ?? (await context.newPage());
  let closed: Promise<void> | undefined;
  return {
    context,
    page,
    userDataDir,
    close: () =>
      (closed ??= (async () => {
        await context.close().catch(() => undefined);
        await rm(userDataDir, { recursive: true, force: true });
      })()),
  };
}
