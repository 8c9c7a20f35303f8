/**
 * `npm run demo -- --interactive`: the same services under the same load, but the toggling is the person's, in
 * Unleash's own web UI. The demo prints where to log in, then every phase change and refusal the services report
 * until Ctrl-C.
 */
import type { Migration } from '@phaseflag/core';
import { bold, green, red, type Reporter } from './reporter.js';
import type { Stack } from './stack.js';

export function printInstructions(say: (line: string) => void, stack: Stack, migration: Migration): void {
  const f = migration.flags;
  say('');
  say(bold("Your turn: drive the migration from Unleash's web UI"));
  say(
    `  Unleash UI      ${stack.unleash.url}/projects/default   login ${bold(stack.unleash.login.username)} / ${bold(stack.unleash.login.password)}`,
  );
  say(
    `  flags           project "default", environment "${stack.unleash.environment}" (the column headed "develo…" in the flag list)`,
  );
  for (const s of stack.services)
    say(`  ${s.instanceId.padEnd(15)} ${s.url}/phaseflag   (what this instance applies and reads)`);
  say('');
  say(`  1. switch on ${f.dualWrite}     → phase dual-write: both columns are written`);
  say(`  2. switch on ${f.backfill}       → the backfill runs, then verify by itself`);
  say(`  3. switch on ${f.readNew} and move its rollout (the strategy's slider, 0% at first) → reads move`);
  say(
    `  4. switch on ${f.contract}       → NOT NULL enforced, sync trigger and ${migration.oldColumn} dropped (read-new must be at 100%)`,
  );
  say(`  Try a step out of order (read-new before verify): the services refuse it and keep reading the old column.`);
  say(`  Ctrl-C stops everything.`);
  say('');
}

/** Prints the load's counts every `everyMs` until `signal` aborts. */
export async function followInteractively(
  stack: Stack,
  reporter: Reporter,
  signal: AbortSignal,
  everyMs = 10_000,
): Promise<void> {
  let last = { requests: 0, failed: 0 };
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = stack.load?.snapshot();
      if (!now) return;
      const failedNow = now.failed - last.failed;
      reporter.note(
        `load: ${(now.requests - last.requests).toLocaleString('en-US')} requests in the last ${everyMs / 1000} s, ${failedNow === 0 ? green('0 failed') : red(`${failedNow} failed`)}; reads ${now.readsOld.toLocaleString('en-US')} old / ${now.readsNew.toLocaleString('en-US')} new so far`,
      );
      last = { requests: now.requests, failed: now.failed };
    }, everyMs);
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(timer);
        resolve();
      },
      { once: true },
    );
  });
}
