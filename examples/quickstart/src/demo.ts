/**
 * `npm run demo`: a whole phaseflag migration under live traffic, driven through Unleash as an operator would.
 * It starts an embedded PostgreSQL (or uses DATABASE_URL), an in-process unleash-server, two orders-service
 * instances under load, then turns the phase flags on one after the other through Unleash's Admin API and prints
 * what the services report. Exit 0 only when every row is correct and no request failed.
 *
 * `--interactive` leaves the toggling to you, in Unleash's web UI. See ../README.md.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Reporter, bold } from './reporter.js';
import { startStack, type Stack } from './stack.js';
import { finalState } from './final-state.js';
import { printSummary, verdict } from './summary.js';
import { TIMELINE_SPANS } from './timeline.js';
import { followInteractively, printInstructions } from './interactive.js';
import { walk } from './walk.js';

const USAGE = `usage: npm run demo -- [--rows N] [--interactive] [--verbose]
  --rows N         orders to seed (default 100000)
  --interactive    you toggle the flags in Unleash's web UI; Ctrl-C stops
  --unleash-port P where Unleash listens (default: 4242 with --interactive when free, else any free port)
  --verbose        show the services' and Unleash's logs
environment:
  DATABASE_URL                  use this PostgreSQL server (the demo creates and drops a database on it);
                                without it an embedded PostgreSQL is started and removed
  PHASEFLAG_DIRECT_URL          with DATABASE_URL through a transaction pooler (PgBouncer): the server's own
                                address, for the operator's side (the services stay on DATABASE_URL)
  OTEL_EXPORTER_OTLP_ENDPOINT   also send the services' traces, metrics and logs to this OTLP/HTTP collector`;

const MIGRATION_ID = 'orders-amount';

function parseOptions(): { rows: number; interactive: boolean; verbose: boolean; unleashPort: number | undefined } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        rows: { type: 'string', default: '100000' },
        interactive: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        'unleash-port': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const rows = Number(values.rows);
  if (!/^\d+$/.test(values.rows) || !Number.isSafeInteger(rows) || rows < 1 || rows > 50_000_000)
    fail(`--rows must be a whole number from 1 to 50000000, got ${JSON.stringify(values.rows)}`);
  const port = values['unleash-port'];
  const unleashPort = port === undefined ? undefined : Number(port);
  if (unleashPort !== undefined && (!/^\d+$/.test(port!) || unleashPort < 1 || unleashPort > 65_535))
    fail(`--unleash-port must be a port number, got ${JSON.stringify(port)}`);
  return { rows, interactive: values.interactive, verbose: values.verbose, unleashPort };
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

const options = parseOptions();
if (options.verbose) process.env.PHASEFLAG_UNLEASH_LOG ??= 'info';
const say = (line: string) => console.log(line);

let stack: Stack | undefined;
let stopping: Promise<void> | undefined;
const interrupted = new AbortController();

/** Set by the first Ctrl-C (or SIGTERM, SIGHUP): what follows is the demo stopping on purpose. */
let signalled: NodeJS.Signals | undefined;

/**
 * Ctrl-C (or SIGTERM) stops everything the demo started, in order, before exiting; a second Ctrl-C exits
 * immediately. With a listener of the demo's own, @phaseflag/local leaves the signals to it (its exit hook still
 * stops its servers if the demo exits without stopping them).
 */
function takeOverSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (signalled || stopping) process.exit(130);
      signalled = signal;
      say(`\n${signal}: stopping everything the demo started…`);
      interrupted.abort();
    });
  }
}

/**
 * unleash-server runs in this process; when its database goes away under it (Ctrl-C in a terminal reaches the
 * embedded PostgreSQL too) its scheduled jobs reject with nobody listening. While stopping that is expected; at
 * any other time it is a failure of the demo, which then stops everything and exits 1. The same Ctrl-C reaches
 * the embedded server and this process at once, and a connection it closes may reject here before the signal's
 * handler has run: a rejection counts as a failure only when no signal follows it within a moment.
 */
const SIGNAL_GRACE_MS = 500;
let unexpected: unknown;
process.on('unhandledRejection', (reason) => {
  if (signalled || interrupted.signal.aborted) {
    if (options.verbose) console.error('while stopping:', reason);
    return;
  }
  setTimeout(() => {
    if (signalled || interrupted.signal.aborted) return;
    unexpected ??= reason;
    interrupted.abort();
  }, SIGNAL_GRACE_MS).unref();
});

async function shutdown(): Promise<void> {
  const problems = (await stack?.close()) ?? [];
  if (problems.length > 0 && (options.verbose || !interrupted.signal.aborted))
    say(`while stopping: ${problems.join('; ')}`);
}

async function main(): Promise<number> {
  takeOverSignals();
  say(
    `${bold('phaseflag demo')}: ${MIGRATION_ID}, orders.amount_cents integer → orders.amount numeric(12,2), under live traffic`,
  );
  say('');
  stack = await startStack({
    rows: options.rows,
    instances: 2,
    verbose: options.verbose,
    keepSpan: (name) => TIMELINE_SPANS.has(name),
    say,
    unleashPort: options.unleashPort ?? (options.interactive ? 4242 : undefined),
    signal: interrupted.signal,
  });
  const migration = stack.migrations.find((m) => m.id === MIGRATION_ID)!;
  if (interrupted.signal.aborted) return 130;

  if (options.interactive) {
    printInstructions(say, stack, migration);
    // Every migration's events: the person may toggle any flag in the UI.
    const reporter = new Reporter(stack.services, say);
    await followInteractively(stack, reporter, interrupted.signal);
    const load = await stack.load!.stop();
    say(
      `load: ${load.requests.toLocaleString('en-US')} requests, ${load.failed} failed${load.errorSamples.length ? ` (${load.errorSamples.slice(0, 3).join('; ')})` : ''}`,
    );
    return load.failed === 0 ? 0 : 1;
  }

  say('');
  const reporter = new Reporter(stack.services, say, { migration: MIGRATION_ID });
  const walked = await walk(stack, reporter, migration, options.rows, interrupted.signal);
  await sleep(1_000); // a last second of traffic on the contracted table
  const load = await stack.load!.stop();
  const final = await finalState(stack, migration);
  // Stopping the services flushes their last spans to the receiver before the timeline is drawn.
  await Promise.all(stack.services.map((s) => s.stop()));
  const { ok, problems } = verdict(load, walked, final, options.rows);
  printSummary(say, { migration, load, walked, final, reporter, stack, ok, problems });
  return ok ? 0 : 1;
}

void main()
  .catch(async (error: unknown) => {
    // A Ctrl-C that also stopped the embedded server can be a moment behind the failed query it caused.
    if (!signalled && !interrupted.signal.aborted) await sleep(SIGNAL_GRACE_MS);
    if (unexpected !== undefined) error = unexpected;
    else if (signalled || interrupted.signal.aborted) return 130;
    console.error(
      `\ndemo failed: ${error instanceof Error ? (options.verbose ? error.stack : error.message) : String(error)}`,
    );
    return 1;
  })
  .then(async (code) => {
    if (unexpected !== undefined && code !== 1) {
      console.error(`\ndemo failed: ${unexpected instanceof Error ? unexpected.message : String(unexpected)}`);
      code = 1;
    }
    stopping = shutdown();
    await stopping;
    say(
      code === 130
        ? 'stopped.'
        : code === 0
          ? 'everything the demo started is stopped.'
          : 'stopped everything the demo started.',
    );
    process.exit(code);
  });
