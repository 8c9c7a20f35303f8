/**
 * `npm run load -w @phaseflag/example-orders-service -- --targets http://127.0.0.1:3001,http://127.0.0.1:3002`
 *
 * Sends reads and writes until stopped (Ctrl-C, SIGTERM) or for --duration seconds, prints a progress line every
 * --every seconds to stderr and the final report as JSON to stdout. Exits 1 when any request failed (an HTTP
 * error or a wrong value), so it can gate a script.
 */
import { parseArgs } from 'node:util';
import { startLoad, type LoadReport } from './load.js';

const USAGE = `usage: load --targets URL[,URL…] [--concurrency 4] [--write-ratio 0.3] [--seeded-rows N] [--pause-ms 0]
            [--users 1000] [--duration SECONDS] [--every 5]
  --seeded-rows N   the service was seeded with N orders (SEED_ROWS): also read and update those rows`;

const { values } = parseArgs({
  options: {
    targets: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
    'write-ratio': { type: 'string', default: '0.3' },
    'seeded-rows': { type: 'string', default: '0' },
    'pause-ms': { type: 'string', default: '0' },
    users: { type: 'string', default: '1000' },
    duration: { type: 'string' },
    every: { type: 'string', default: '5' },
    help: { type: 'boolean', default: false },
  },
});

function number(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (raw === undefined || !Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

if (values.help || !values.targets) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(values.help ? 0 : 2);
}
const targets = values.targets
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean);
for (const t of targets) {
  if (!/^https?:\/\/[^/]+/.test(t)) {
    process.stderr.write(`--targets: ${JSON.stringify(t)} is not an http(s) URL\n`);
    process.exit(2);
  }
}

const load = startLoad({
  targets,
  concurrency: number('concurrency', values.concurrency, 1, 256),
  writeRatio: number('write-ratio', values['write-ratio'], 0, 1),
  seededRows: number('seeded-rows', values['seeded-rows'], 0, 1e9),
  pauseMs: number('pause-ms', values['pause-ms'], 0, 60_000),
  users: number('users', values.users, 1, 1e9),
});

const line = (r: LoadReport, seconds: number) =>
  `${seconds.toFixed(0)} s: ${r.requests} requests (${(r.requests / Math.max(seconds, 1e-3)).toFixed(0)}/s), ${r.failed} failed, ` +
  `reads old/new ${r.readsOld}/${r.readsNew}, latency p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms max ${r.latencyMs.max} ms`;

const started = performance.now();
const seconds = () => (performance.now() - started) / 1000;
let lastFailed = 0;
const progress = setInterval(
  () => {
    const r = load.snapshot();
    process.stderr.write(`${line(r, seconds())}\n`);
    if (r.failed > lastFailed)
      process.stderr.write(`  failures so far, first ones:\n    ${r.errorSamples.join('\n    ')}\n`);
    lastFailed = r.failed;
  },
  number('every', values.every, 0.1, 3600) * 1000,
);

let finishing = false;
async function finish(): Promise<void> {
  if (finishing) return;
  finishing = true;
  clearInterval(progress);
  const report = await load.stop();
  process.stderr.write(`${line(report, seconds())}\n`);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  process.exit(report.failed > 0 ? 1 : 0);
}
process.on('SIGINT', () => void finish());
process.on('SIGTERM', () => void finish());
if (values.duration !== undefined)
  setTimeout(() => void finish(), number('duration', values.duration, 0.1, 1e7) * 1000);
