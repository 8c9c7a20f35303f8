import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUnleash, waitFor, type UnleashServer } from '@phaseflag/testkit';
import { UnleashFlagSource } from '../src/index.js';
import { ENV, clientConfig, closedPort, msUntil, operatorFlag, quiet } from './support.js';

describe('UnleashFlagSource when Unleash goes away', () => {
  let server: UnleashServer;
  let backupDir: string;
  const sources: UnleashFlagSource[] = [];
  const track = (source: UnleashFlagSource) => (sources.push(source), source);
  before(async () => {
    server = await startUnleash();
    backupDir = await mkdtemp(join(tmpdir(), 'phaseflag-unleash-backup-'));
  });
  afterEach(() => {
    for (const s of sources.splice(0)) s.close();
  });
  after(async () => {
    await server?.stop();
    await rm(backupDir, { recursive: true, force: true });
  });

  it('keeps the last known flags until they are staleAfterMs old, then reads unknown; catches up when Unleash is back', async () => {
    const flag = 'outage.read-new';
    await operatorFlag(server, flag, { rollout: 100 });
    const staleAfterMs = 3000;
    const source = track(new UnleashFlagSource({ unleash: clientConfig(server), staleAfterMs, ...quiet }));
    await msUntil(() => source.isEnabled(flag, { userId: 'u1' }) === true, 5000, 'flag served');
    const flips: string[][] = [];
    source.onChange((names) => flips.push([...names]));

    let unknownAfterMs = 0;
    await server.restart({
      whileDown: async () => {
        // The last answer before the stop: nothing confirms the flags again while Unleash is down.
        const confirmedAt = source.status().knownAsOf!.getTime();
        assert.equal(source.isEnabled(flag, { userId: 'u1' }), true, 'last known value right after the stop');
        await msUntil(
          () => source.isEnabled(flag, { userId: 'u1' }) === undefined,
          staleAfterMs + 2000,
          'unknown once stale',
        );
        unknownAfterMs = Date.now() - confirmedAt;
        assert.equal(source.state(flag), undefined);
        assert.equal(source.status().known, false);
        // Reads turn unknown by the clock; listeners hear of it from the stale timer, which a busy event loop may
        // run a little after the first read that sees it.
        await msUntil(
          () => flips.some((names) => names.includes(flag)),
          500,
          'onChange to tell listeners the flag became unknown',
        );
      },
    });
    // Stale means "last confirmed more than staleAfterMs ago", to the millisecond but for the 10 ms poll of this
    // test and a busy event loop.
    assert.ok(
      unknownAfterMs > staleAfterMs && unknownAfterMs <= staleAfterMs + 300,
      `unknown ${unknownAfterMs} ms after the last confirmation`,
    );

    const restartedAt = performance.now();
    await msUntil(() => source.isEnabled(flag, { userId: 'u1' }) === true, 20_000, 'known again');
    const catchUpMs = Math.round(performance.now() - restartedAt);
    console.log(
      `      unknown ${unknownAfterMs} ms after its last answer (staleAfterMs ${staleAfterMs}); known again ${catchUpMs} ms after it came back`,
    );
    assert.equal(source.status().origin, 'unleash');

    await server.admin.disable(flag, ENV);
    await msUntil(() => source.isEnabled(flag, { userId: 'u1' }) === false, 10_000, 'a toggle after the outage');
  });

  it("a service restarted during an outage serves the backup file's flags while it is fresh, then unknown", async () => {
    const flag = 'outage.backup';
    await operatorFlag(server, flag, { rollout: 100 });
    const staleAfterMs = 4000;
    const config = clientConfig(server, {
      appName: `phaseflag-backup-${randomBytes(3).toString('hex')}`,
      backupPath: backupDir,
    });
    const backupFile = join(backupDir, `unleash-backup-${config.appName}.json`);

    const before = track(new UnleashFlagSource({ unleash: config, staleAfterMs, ...quiet }));
    await msUntil(() => before.isEnabled(flag) === true, 5000, 'flag served and written to the backup');
    await waitFor(
      () =>
        stat(backupFile).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 2000, description: 'backup file' },
    );
    before.close(); // the service stops

    await server.restart({
      whileDown: async () => {
        const { mtimeMs } = await stat(backupFile);
        const after = track(new UnleashFlagSource({ unleash: config, staleAfterMs, ...quiet }));
        await msUntil(() => after.isEnabled(flag) === true, 2000, 'flags from the backup');
        assert.equal(after.status().origin, 'backup');
        assert.equal(after.status().knownAsOf!.getTime(), Math.floor(mtimeMs));
        assert.deepEqual(
          { ...after.state(flag), version: undefined },
          { enabled: true, fullyOn: true, version: undefined },
        );

        await msUntil(() => after.isEnabled(flag) === undefined, staleAfterMs + 2000, 'backup data turns stale');
        const staleAt = Date.now() - mtimeMs;
        assert.ok(
          staleAt >= staleAfterMs - 50 && staleAt <= staleAfterMs + 500,
          `unknown ${Math.round(staleAt)} ms after the backup's mtime`,
        );
      },
    });
  });

  it('bootstrap data counts as known from the moment it is loaded, until staleAfterMs', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/api`;
    const bootstrap = {
      data: [
        { name: 'outage.boot', enabled: true, strategies: [{ name: 'default', parameters: {}, constraints: [] }] },
      ],
    };
    const started = Date.now();
    const source = track(
      new UnleashFlagSource({ unleash: { ...clientConfig(server), url, bootstrap }, staleAfterMs: 1500, ...quiet }),
    );
    await msUntil(() => source.isEnabled('outage.boot') === true, 1000, 'bootstrap served');
    assert.equal(source.status().origin, 'bootstrap');
    assert.equal(source.state('outage.boot')!.fullyOn, true);
    await msUntil(() => source.isEnabled('outage.boot') === undefined, 3000, 'bootstrap data turns stale');
    assert.ok(Date.now() - started >= 1500);
  });
});
