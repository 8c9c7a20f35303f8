/**
 * `npm run demo`: a whole phaseflag migration under live traffic, on an embedded Postgres unless a database is
 * configured. Two service instances read and write `orders` the whole time while the migration walks
 * expand → dual-write → backfill → verify → read-new → contract; at the end it prints what was served, what
 * failed (must be nothing), the time per phase and the migration's trace as a timeline.
 *
 * Options: --rows N (default 100000). Environment: DATABASE_URL (else embedded), OTEL_EXPORTER_OTLP_ENDPOINT.
 */
import { parseArgs } from 'node:util';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, BatchSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { defineMigration, StaticFlagSource } from '@phaseflag/core';
import { Phaseflag, type KnexRouter } from '@phaseflag/postgres';
import knexFactory, { type Knex } from 'knex';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log('usage: npm run demo -- [--rows N]\n  DATABASE_URL   use this Postgres instead of an embedded one\n  OTEL_EXPORTER_OTLP_ENDPOINT   also export the trace over OTLP/HTTP');
  process.exit(0);
}
const ROWS = Number(values.rows);
if (!Number.isSafeInteger(ROWS) || ROWS < 1 || ROWS > 50_000_000) {
  console.error(`--rows must be a whole number from 1 to 50000000, got ${JSON.stringify(values.rows)}`);
  process.exit(2);
}
if (process.env.DATABASE_URL) process.env.PHASEFLAG_DATABASE_URL ??= process.env.DATABASE_URL;
else if (!process.env.PHASEFLAG_DATABASE_URL) process.env.PHASEFLAG_EMBEDDED = '1';

const memory = new InMemorySpanExporter();
const processors: SpanProcessor[] = [new SimpleSpanProcessor(memory)];
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
}
const { resourceFromAttributes } = await import('@opentelemetry/resources');
const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'phaseflag-demo' }), spanProcessors: processors });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);

// The testkit resolves the database the same way the test suite does: configured, else embedded.
const { resolveDatabase, startLoad } = await import('@phaseflag/testkit');

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => console.log(s);

const migration = defineMigration({
  id: 'orders-amount',
  table: 'demo.orders',
  oldColumn: 'amount_cents',
  newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false, check: 'amount >= 0' },
  backfill: 'amount_cents::numeric / 100',
  reverse: '(amount * 100)::integer',
});

async function main(): Promise<number> {
  const db = await resolveDatabase();
  say(`${bold('phaseflag demo')}: ${ROWS.toLocaleString('en-US')} orders on ${db.kind === 'embedded' ? 'an embedded PostgreSQL' : db.connectionString.replace(/\/\/[^@]*@/, '//')}`);
  const knex = knexFactory({ client: 'pg', connection: db.connectionString, pool: { min: 0, max: 6 } });
  const services: Array<{ knex: Knex; pf: Phaseflag; router: KnexRouter; flags: StaticFlagSource }> = [];
  let loads: Array<ReturnType<typeof startLoad>> = [];
  let pfMain: Phaseflag | undefined;
  try {
    await knex.raw('DROP SCHEMA IF EXISTS demo CASCADE');
    await knex.raw('DROP SCHEMA IF EXISTS phaseflag_demo CASCADE');
    await knex.raw('CREATE SCHEMA demo');
    await knex.raw('CREATE TABLE demo.orders (id bigserial PRIMARY KEY, customer_id integer NOT NULL, amount_cents integer NOT NULL CHECK (amount_cents >= 0))');
    await knex.raw('INSERT INTO demo.orders (customer_id, amount_cents) SELECT g % 1000 + 1, (g * 37) % 100000 FROM generate_series(1, ?) g', [ROWS]);
    await knex.raw('ANALYZE demo.orders');

    const pf = new Phaseflag({ knex, stateSchema: 'phaseflag_demo', pollIntervalMs: 250, graceMs: 750, actor: 'demo-operator' });
    pfMain = pf;
    await pf.install();
    const m = pf.migration(migration);

    // Two service instances: own pools, own routers, own flag sources (in production: the Unleash source).
    for (const n of [1, 2]) {
      const sk = knexFactory({ client: 'pg', connection: db.connectionString, pool: { min: 0, max: 4 } });
      const spf = new Phaseflag({ knex: sk, stateSchema: 'phaseflag_demo', pollIntervalMs: 250 });
      const flags = new StaticFlagSource({ [migration.flags.readNew]: false });
      const router = await spf.migration(migration).router(flags, { instanceId: `orders-service-${n}`, heartbeatMs: 500 });
      services.push({ knex: sk, pf: spf, router, flags });
    }
    const rand = (k: number) => 1 + Math.floor(Math.random() * k);
    loads = services.map(({ knex: sk, router }) => startLoad({
      knex: sk,
      concurrency: 3,
      ops: [
        { name: 'read', weight: 5, run: async (_i, d) => { await d('demo.orders').select('id', router.select({ userId: String(rand(500)) })).where('id', rand(ROWS)); } },
        { name: 'insert', weight: 1, run: async (_i, d) => { await d('demo.orders').insert(router.row({ customer_id: rand(1000), amount_cents: rand(99_999) })); } },
        { name: 'update', weight: 2, run: async (_i, d) => { await d('demo.orders').update(router.row({ amount_cents: rand(99_999) })).where('id', rand(ROWS)); } },
      ],
    }));
    say('two service instances are serving reads and writes\n');

    const timings: Array<[string, number]> = [];
    const phase = async (label: string, fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      process.stdout.write(`  ${label.padEnd(34)}`);
      await fn();
      const ms = performance.now() - t0;
      timings.push([label, ms]);
      const s = await m.status();
      say(`→ ${bold(s.phase.padEnd(11))} ${ms.toFixed(0).padStart(7)} ms`);
      await new Promise((r) => setTimeout(r, 400)); // traffic runs in every phase
    };

    await phase('expand: add amount numeric(12,2)', () => m.expand());
    await phase('dual-write: services write both', () => m.startDualWrite());
    let rows = 0;
    await phase('backfill: batched, resumable', async () => {
      const r = await m.backfill({ onProgress: (p) => { rows = p.rowsDone; } });
      rows = r.rowsScanned;
    });
    let checked = 0;
    await phase('verify: every row equals the expr', async () => { checked = (await m.verify()).rowsChecked; });
    await phase('read-new: reads may switch', async () => {
      await m.readNew();
      for (const s of services) s.flags.set(migration.flags.readNew, true);
      // As an operator would: contract only once every live instance reports that it reads the new column.
      const deadline = Date.now() + 15_000;
      while ((await m.status()).instances.some((i) => i.live && i.readsOld) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    });
    await phase('contract: NOT NULL, drop old column', () => m.contract({ confirm: true, dropOldColumn: true }));

    const reports = await Promise.all(loads.map((l) => l.stop()));
    loads = [];
    const served = reports.reduce((a, r) => a + r.ops, 0);
    const failed = reports.reduce((a, r) => a + r.errors, 0);
    const wrong = Number((await knex.raw('SELECT count(*) AS n FROM demo.orders WHERE amount IS NULL')).rows[0].n);
    const total = Number((await knex.raw('SELECT count(*) AS n FROM demo.orders')).rows[0].n);

    say(`\n${bold('summary')}`);
    say(`  requests served   ${served}`);
    say(`  failed requests   ${failed}${failed > 0 ? `  (${reports.flatMap((r) => r.errorSamples).slice(0, 3).map((e) => e.message).join('; ')})` : ''}`);
    say(`  rows backfilled   ${rows}`);
    say(`  rows verified     ${checked}`);
    say(`  rows at the end   ${total} (${wrong} without an amount)`);
    for (const r of reports) for (const [op, s] of Object.entries(r.byOp)) say(`  ${op.padEnd(7)} p50 ${s.p50Ms.toFixed(1)} ms  p99 ${s.p99Ms.toFixed(1)} ms  max ${s.maxMs.toFixed(1)} ms`);

    say(`\n${bold('trace')} (phaseflag.transition and phaseflag.backfill spans)`);
    printTimeline(memory.getFinishedSpans());
    await pf.close();
    pfMain = undefined;
    return failed === 0 && wrong === 0 && checked >= ROWS ? 0 : 1;
  } finally {
    for (const l of loads) await l.stop();
    for (const s of services) {
      await s.pf.close();
      await s.knex.destroy();
    }
    await pfMain?.close();
    await knex.destroy();
    await provider.shutdown();
    await db.release();
  }
}

function printTimeline(spans: ReadableSpan[]): void {
  const shown = spans.filter((s) => s.name === 'phaseflag.transition' || s.name === 'phaseflag.backfill' || s.name === 'phaseflag.verify');
  if (shown.length === 0) return;
  const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
  const start = Math.min(...shown.map((s) => ms(s.startTime)));
  const end = Math.max(...shown.map((s) => ms(s.endTime)));
  const width = 50;
  for (const s of shown.sort((a, b) => ms(a.startTime) - ms(b.startTime))) {
    const a = Math.floor(((ms(s.startTime) - start) / (end - start || 1)) * width);
    const b = Math.max(a + 1, Math.ceil(((ms(s.endTime) - start) / (end - start || 1)) * width));
    const label = s.name === 'phaseflag.transition' ? `${s.attributes['phaseflag.phase.from']} → ${s.attributes['phaseflag.phase.to']}` : s.name.replace('phaseflag.', '');
    say(`  ${label.padEnd(26)} ${' '.repeat(a)}${'█'.repeat(b - a)}${' '.repeat(width - b)} ${(ms(s.endTime) - ms(s.startTime)).toFixed(0)} ms`);
  }
}

main().then((code) => process.exit(code), (error) => {
  if (process.env.DEBUG) console.error(error);
  console.error(error instanceof Error ? `${error.message}${'hint' in error ? `\n  hint: ${String((error as { hint: unknown }).hint)}` : ''}` : error);
  process.exit(1);
});
