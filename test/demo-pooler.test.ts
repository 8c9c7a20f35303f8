import assert from 'node:assert/strict';
import { LOCAL_DATABASE_URL, ensurePgBouncer, startPgBouncer, type PgBouncer } from '@phaseflag/testkit';
import { DemoProcess } from './fixtures/demo-process.js';

/**
 * `npm run demo` deployed as hosted Postgres is: DATABASE_URL through PgBouncer in transaction mode, which the two
 * service instances use (their routers poll), and PHASEFLAG_DIRECT_URL, the server's own address, which the
 * operator's side uses (the demo's database, Unleash's tables, the controllers' steps). The whole walk must end
 * as it does directly: zero failed requests, every row correct.
 */
describe('the demo behind PgBouncer (DATABASE_URL pooled, PHASEFLAG_DIRECT_URL direct)', function () {
  this.timeout(240_000);
  let bouncer: PgBouncer | undefined;
  let demo: DemoProcess | undefined;
  const direct = process.env.PHASEFLAG_DATABASE_URL ?? LOCAL_DATABASE_URL;

  before(async function () {
    const reason = ensurePgBouncer();
    if (reason) {
      console.log(`      (skipped: ${reason})`);
      this.skip();
    }
    bouncer = await startPgBouncer({ target: direct });
  });

  after(async () => {
    await demo?.kill();
    await bouncer?.stop();
  });

  it('walks the migration to contracted with the services polling through the pooler, zero failed requests', async () => {
    demo = DemoProcess.start(['--rows', '2000'], {
      via: 'node',
      env: { DATABASE_URL: bouncer!.url, PHASEFLAG_DIRECT_URL: direct },
    });
    const { code } = await demo.exited;
    const out = demo.lines.join('\n');
    assert.equal(code, 0, `the demo exited ${code}\n${demo.transcript()}`);
    assert.match(
      out,
      new RegExp(
        `postgres\\s+127\\.0\\.0\\.1:${bouncer!.port}/\\S+ \\(DATABASE_URL\\), operator on \\S+ \\(PHASEFLAG_DIRECT_URL\\)`,
      ),
    );
    // Polling sees the phases that last (backfilling and backfilled may pass between two polls).
    for (const phase of ['dual-write', 'verified', 'read-new', 'contracted'])
      assert.match(out, new RegExp(`orders-amount: phase ${phase}`));
    assert.match(out, /failed requests\s+0$/m);
    const verified = /rows verified\s+([\d,]+) of ([\d,]+) orders/.exec(out);
    assert.ok(verified && verified[1] === verified[2], `every row holds the expected value\n${out}`);
    assert.match(out, /migration complete: every row correct, no failed request/);
    assert.deepEqual(demo.leftoverProcesses(), []);
  });
});
