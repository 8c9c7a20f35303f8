import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { isPhaseflagError, type Logger } from '@phaseflag/core';
import { startUnleash, type UnleashServer } from '@phaseflag/testkit';
import { Freshness } from '../src/freshness.js';
import { UnleashFlagSource, UnleashRejectedError, UnleashUnavailableError, provisionFlags } from '../src/index.js';
import { clientConfig, ordersMigration } from './support.js';

/** Everything an error shows: message, hint, value and its JSON. */
const shown = (error: unknown) => `${String(error)}\n${JSON.stringify(error)}\n${(error as { hint?: string }).hint}`;

describe('secrets stay out of errors and logs', function () {
  this.timeout(60_000);
  let server: UnleashServer;
  let echo: Server;
  let echoUrl: string;
  before(async () => {
    server = await startUnleash();
    // A gateway that refuses every request and echoes its headers back (as debugging proxies do), with padding.
    echo = createServer((req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad request', headers: req.headers, padding: 'x'.repeat(5000) }));
    }).listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoUrl = `http://127.0.0.1:${(echo.address() as { port: number }).port}`;
  });
  after(async () => {
    echo?.close();
    await server?.stop();
  });

  it('PF_UNLEASH_UNAVAILABLE shows the URL without the password of its userinfo', async () => {
    const url = server.url.replace('://', '://ops:s3cret-pw@');
    await assert.rejects(provisionFlags(ordersMigration(), { url, token: server.adminToken }), (error: unknown) => {
      assert.ok(error instanceof UnleashUnavailableError, String(error));
      assert.ok(!shown(error).includes('s3cret-pw'), shown(error));
      assert.match(error.message, /ops:\*\*\*@127\.0\.0\.1/);
      assert.match(error.url, /^http:\/\/ops:\*\*\*@127\.0\.0\.1:\d+\/?$/);
      // fetch's own error names the whole URL: the cause is a scrubbed copy (its name and code kept).
      const cause = error.cause as Error;
      assert.ok(cause instanceof Error && !`${cause.message}${cause.stack}`.includes('s3cret-pw'), cause?.stack);
      assert.equal(cause.name, 'TypeError');
      return true;
    });
  });

  it('PF_UNLEASH_REJECTED does not repeat the admin token a response body echoes, and caps the body', async () => {
    const token = server.adminToken;
    await assert.rejects(provisionFlags(ordersMigration(), { url: echoUrl, token }), (error: unknown) => {
      assert.ok(error instanceof UnleashRejectedError, String(error));
      assert.equal(error.status, 400);
      assert.ok(!shown(error).includes(token.slice(4)), shown(error));
      assert.match(error.body, /"authorization":"\*\*\*"/);
      assert.ok(error.body.length < 1100, `body of ${error.body.length} characters`);
      assert.match(error.body, /more characters\)$/);
      assert.ok(error.message.length < 500, error.message);
      return true;
    });
  });

  it('a client token Unleash refuses is a 401 at once, named as a token problem, with no token or password in logs', async () => {
    const lines: string[] = [];
    const at = (message: string, fields?: Record<string, unknown>) =>
      lines.push(`${message} ${JSON.stringify(fields)}`);
    const logger: Logger = { debug: at, info: at, warn: at, error: at };
    const badToken = 'default:development.0123456789abcdef0123456789abcdef';
    const url = `${server.url.replace('://', '://ops:s3cret-pw@')}/api`;
    const source = new UnleashFlagSource({
      unleash: { ...clientConfig(server), customHeaders: { Authorization: badToken } },
      logger,
    });
    const withPassword = new UnleashFlagSource({ unleash: { ...clientConfig(server), url }, logger });
    try {
      const started = performance.now();
      assert.equal(await source.whenKnown(15_000), false);
      const waited = performance.now() - started;
      assert.ok(waited < 10_000, `whenKnown gave up after ${Math.round(waited)} ms, not at the refusal`);
      assert.equal(source.status().rejectedStatus, 401);
      assert.equal(await source.whenKnown(15_000), false, 'and at once afterwards');
      assert.equal(await withPassword.whenKnown(3000), false);
      const everything = [...lines, source.status().lastError, withPassword.status().lastError].join('\n');
      assert.match(everything, /refused the client token \(401\)/);
      assert.ok(!everything.includes('0123456789abcdef'), everything);
      assert.ok(!everything.includes('s3cret-pw'), everything);
    } finally {
      source.close();
      withPassword.close();
    }
  });

  it("reads unleash-client's 401 and 403 as a refused token, other failures not, and forgets it after a poll succeeds", () => {
    const f = new Freshness(1000);
    const refused = (status: number) => `http://h/api/client/features responded ${status} which means your API key...`;
    f.failed(1, 'http://h/api/client/features responded 503. Backing off');
    assert.equal(f.status(1).rejectedStatus, undefined);
    f.failed(2, refused(403));
    assert.equal(f.status(2).rejectedStatus, 403);
    f.failed(3, refused(401));
    assert.equal(f.status(3).rejectedStatus, 401);
    f.synced(4);
    assert.equal(f.status(4).rejectedStatus, undefined);
  });

  it('PF_INVALID_OPTIONS shows the options without the client token or the URL password', () => {
    const options = {
      unleash: { ...clientConfig(server), url: 'https://ops:s3cret-pw@unleash.example.com/api' },
      staleAfterMs: -1,
    };
    assert.throws(
      () => new UnleashFlagSource(options),
      (error: unknown) => {
        assert.ok(isPhaseflagError(error, 'PF_INVALID_OPTIONS'), String(error));
        assert.ok(!shown(error).includes(server.clientToken), shown(error));
        assert.ok(!shown(error).includes('s3cret-pw'), shown(error));
        return true;
      },
    );
  });
});
