import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { defineMigration } from '@phaseflag/core';
import { startUnleash, type UnleashServer } from '@phaseflag/testkit';
import { provisionFlags, UnleashRejectedError, UnleashUnavailableError } from '@phaseflag/unleash';
import { recordFinding } from './record.js';

const ENV = 'development';
const ordersMigration = (prefix: string) =>
  defineMigration({
    id: `${prefix}-${randomBytes(3).toString('hex')}`,
    table: 'public.orders',
    oldColumn: 'amount_cents',
    newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false },
    backfill: 'amount_cents::numeric / 100',
  });

/**
 * The Admin API failing in the middle of provisioning (a proxy answering 503, a connection reset): the run fails
 * typed, and running it again finishes the job. Every request of a clean run is cut in turn, so every partial
 * state a real outage can leave is tried.
 */
describe('reliability: provisioning cut short by a failing Admin API', function () {
  this.timeout(180_000);
  let server: UnleashServer;
  let proxy: Server;
  let proxyUrl: string;
  /** The 1-based request to fail (0: none), how, and how many requests the proxy saw. */
  const plan = { failAt: 0, how: '503' as '503' | 'reset', seen: 0 };

  before(async () => {
    server = await startUnleash();
    const target = new URL(server.url);
    proxy = createServer((req, res) => {
      plan.seen++;
      if (plan.seen === plan.failAt) {
        if (plan.how === 'reset') req.socket.destroy();
        else res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream unavailable');
        return;
      }
      const upstream = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => proxy?.close(resolve));
    await server?.stop();
  });

  /** What an operator sees of the four flags: on or off, strategies in ENV (group ids without the id), tags. */
  async function view(names: readonly string[], id: string) {
    return Promise.all(
      names.map(async (name) => {
        const flag = await server.admin.getFlag(name);
        const env = flag?.environments.find((e) => e.name === ENV);
        return {
          name,
          enabled: env?.enabled,
          strategies: env?.strategies.map((s) => ({
            name: s.name,
            parameters: { ...s.parameters, groupId: s.parameters?.groupId?.replace(id, '<id>') },
          })),
          tags: await server.admin.getTags(name),
        };
      }),
    );
  }

  it('fails typed at every request, and a second run leaves what a clean run leaves', async () => {
    const clean = ordersMigration('cut-clean');
    plan.failAt = 0;
    plan.seen = 0;
    await provisionFlags(clean, { url: proxyUrl, token: server.adminToken });
    const requests = plan.seen;
    const names = (m: typeof clean) => [m.flags.dualWrite, m.flags.backfill, m.flags.readNew, m.flags.contract];
    const expected = (await view(names(clean), clean.id)).map((f) => ({ ...f, name: undefined, tags: f.tags.length }));
    assert.ok(requests >= 10, `a clean run made ${requests} requests`);

    const failures: string[] = [];
    for (let n = 1; n <= requests; n++) {
      const m = ordersMigration(`cut-${n}`);
      plan.failAt = n;
      plan.how = n % 2 === 0 ? 'reset' : '503';
      plan.seen = 0;
      await assert.rejects(provisionFlags(m, { url: proxyUrl, token: server.adminToken }), (e: unknown) => {
        assert.ok(e instanceof UnleashRejectedError || e instanceof UnleashUnavailableError, String(e));
        return true;
      });
      plan.failAt = 0;
      const rerun = await provisionFlags(m, { url: proxyUrl, token: server.adminToken });
      const got = (await view(names(m), m.id)).map((f) => ({ ...f, name: undefined, tags: f.tags.length }));
      if (JSON.stringify(got) !== JSON.stringify(expected))
        failures.push(
          `cut at request ${n} (${plan.how}): ${JSON.stringify(got)} (rerun: ${JSON.stringify(rerun.flags.map((f) => [f.status, f.warnings]))})`,
        );
    }
    assert.deepEqual(failures, [], `expected after a rerun: ${JSON.stringify(expected)}`);
    recordFinding({
      section: 'Unleash stopped, restarted and its Admin API failing',
      line:
        `Provisioning through a proxy that fails one Admin API request (503 or a reset connection), each of the ` +
        `${requests} requests of a run in turn: every run failed typed (PF_UNLEASH_REJECTED / PF_UNLEASH_UNAVAILABLE), ` +
        `and a second run left the four flags exactly as a clean run does (off, gradual rollout, tag).`,
      figures: { requests, cuts: requests },
    });
  });
});
