import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { DemoProcess, portAnswers, printedPorts } from './fixtures/demo-process.js';

/**
 * `npm run demo`, the README's first command, run exactly as a user runs it (on its embedded PostgreSQL, with the
 * build step), on a small table. It must walk every phase through Unleash, end with zero failed requests and every
 * row correct, export its trace to the user's collector, exit 0, and leave nothing running.
 */
describe('the demo (npm run demo)', function () {
  this.timeout(240_000);
  const ROWS = 2000;
  let demo: DemoProcess | undefined;
  let collector: { server: Server; url: string; traces: Array<{ names: string[] }> } | undefined;

  before(async () => {
    collector = await startCollector();
  });
  afterEach(async () => {
    await demo?.kill();
  });
  after(async () => {
    await new Promise((resolve) => collector?.server.close(resolve));
  });

  it('walks the whole migration under load through Unleash, exits 0 with zero failed requests, and leaves nothing behind', async () => {
    demo = DemoProcess.start(['--rows', String(ROWS)], {
      via: 'npm',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector!.url },
    });
    const { code } = await demo.exited;
    const out = demo.lines.join('\n');
    assert.equal(code, 0, `the demo exited ${code}\n${demo.transcript()}`);

    // Its own PostgreSQL, not the machine's: the user named none.
    assert.match(out, /postgres\s+an embedded PostgreSQL on 127\.0\.0\.1:\d+/);
    assert.match(
      out,
      /unleash\s+http:\/\/127\.0\.0\.1:\d+ \(in-process unleash-server 6\.10\), 8 flags provisioned, all off/,
    );
    assert.match(
      out,
      /services\s+orders-1 http:\/\/127\.0\.0\.1:\d+ \(pid \d+\), orders-2 http:\/\/127\.0\.0\.1:\d+ \(pid \d+\)/,
    );

    // Every toggle, as an operator makes it, and every phase, as the services report it, in order.
    const expected = [
      /operator: orders-amount\.dual-write on/,
      /orders-amount: phase dual-write/,
      /operator: orders-amount\.backfill on/,
      /orders-amount: phase backfilling/,
      /orders-amount: phase backfilled/,
      /orders-amount: phase verified/,
      /operator: orders-amount\.read-new on at 50%/,
      /orders-amount: phase read-new/,
      /operator: orders-amount\.read-new rollout 100%/,
      /operator: orders-amount\.contract on/,
      /orders-amount: phase contracted/,
    ];
    let at = 0;
    for (const pattern of expected) {
      const index = demo.lines.findIndex((l, i) => i >= at && pattern.test(l));
      assert.ok(index >= 0, `"${pattern.source}" after line ${at}\n${demo.transcript()}`);
      at = index + 1;
    }
    assert.doesNotMatch(out, /REFUSED/, 'the automatic walk never collects a refusal');

    // The summary: requests served, none failed, every row verified in the database.
    const served = Number(/requests served\s+([\d,]+)/.exec(out)?.[1]?.replace(/,/g, ''));
    assert.ok(served > 100, `requests served: ${served}`);
    assert.match(out, /failed requests\s+0$/m);
    const verified = /rows verified\s+([\d,]+) of ([\d,]+) orders/.exec(out);
    assert.ok(verified, 'a rows verified line');
    assert.equal(verified[1], verified[2], 'every row holds the expected value');
    assert.ok(Number(verified[2]!.replace(/,/g, '')) >= ROWS, `at least the ${ROWS} seeded rows: ${verified[2]}`);
    assert.match(out, /phaseflag\s+backfilled [\d,]+ rows; its verify checked [\d,]+ rows, 0 mismatches/);
    assert.match(out, /after contract\s+[\d,]+ orders, amount NOT NULL: yes, amount_cents dropped/);
    for (const phase of ['dual-write', 'backfilling', 'backfilled', 'verified', 'read-new', 'contracted']) {
      assert.match(out, new RegExp(`^  ${phase}\\s+(\\d[\\d.]* m?s|final)`, 'm'), `time for phase ${phase}`);
    }
    // The trace as a timeline, from the services' own spans.
    for (const row of [
      'pending → expanded',
      'dual-write → backfilling',
      'backfill \\([\\d,]+ rows\\)',
      'verify',
      'verified → read-new',
      'read-new → contracted',
    ]) {
      assert.match(out, new RegExp(`^  ${row}\\s+orders-[12]\\s+\\+[\\d.]+ s │`, 'm'), `timeline row ${row}`);
    }
    assert.match(out, /migration complete: every row correct, no failed request/);

    // OTEL_EXPORTER_OTLP_ENDPOINT: the same spans reached the user's collector.
    const names = collector!.traces.flatMap((t) => t.names);
    assert.ok(
      names.filter((n) => n === 'phaseflag.transition').length >= 7,
      `transitions forwarded: ${names.filter((n) => n === 'phaseflag.transition').length}`,
    );
    assert.ok(names.includes('phaseflag.backfill') && names.includes('phaseflag.verify'));

    // Nothing left: no process of the demo's group, no port it printed still answering.
    assert.deepEqual(demo.leftoverProcesses(), []);
    const ports = printedPorts(demo.lines).filter((p) => `http://127.0.0.1:${p}` !== collector!.url);
    assert.ok(ports.length >= 4, `ports printed: ${ports.join(', ')}`);
    for (const port of ports) assert.equal(await portAnswers(port), false, `port ${port} still answers`);
  });

  it('stops everything it started on Ctrl-C mid-migration and exits 130', async () => {
    demo = DemoProcess.start(['--rows', String(ROWS)], { via: 'node' });
    await demo.waitForLine(/orders-amount: phase verified/, 120_000);
    // A terminal's Ctrl-C reaches the whole foreground group: the demo, the services and the embedded PostgreSQL.
    process.kill(-demo.child.pid!, 'SIGINT');
    const { code } = await demo.exited;
    assert.equal(code, 130, `exit code after Ctrl-C\n${demo.transcript()}`);
    assert.match(demo.lines.join('\n'), /SIGINT: stopping everything the demo started…[\s\S]*stopped\.$/);
    assert.deepEqual(demo.leftoverProcesses(), []);
    for (const port of printedPorts(demo.lines))
      assert.equal(await portAnswers(port), false, `port ${port} still answers`);
  });

  it('refuses a bad --rows before starting anything', async () => {
    demo = DemoProcess.start(['--rows', 'lots'], { via: 'node' });
    const { code } = await demo.exited;
    assert.equal(code, 2);
    assert.match(demo.stderr.join('\n'), /--rows must be a whole number from 1 to 50000000, got "lots"/);
    assert.equal(demo.lines.length, 0);
  });
});

/** A stand-in for the user's OpenTelemetry collector: OTLP/HTTP JSON on /v1/traces, span names kept. */
async function startCollector(): Promise<{ server: Server; url: string; traces: Array<{ names: string[] }> }> {
  const traces: Array<{ names: string[] }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: Array<{ name: string }> }> }>;
        };
        traces.push({
          names: (body.resourceSpans ?? []).flatMap((r) =>
            (r.scopeSpans ?? []).flatMap((s) => (s.spans ?? []).map((x) => x.name)),
          ),
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, traces };
}
