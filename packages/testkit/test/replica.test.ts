import assert from 'node:assert/strict';
import knex, { type Knex } from 'knex';
import {
  canStartReplica,
  holdsFor,
  replicaUnavailableReason,
  startReplica,
  waitFor,
  type ReplicaPair,
} from '../src/index.js';

describe('startReplica', function () {
  let pair: ReplicaPair;
  let primary: Knex;
  let replica: Knex;

  before(async function () {
    if (!canStartReplica()) {
      // Mocha has no skip reason; print it so a skipped replica suite is never mistaken for a pass.
      console.log(`      (skipped: ${replicaUnavailableReason()})`);
      this.skip();
    }
    const started = performance.now();
    pair = await startReplica();
    console.log(`      (primary + replica started in ${Math.round(performance.now() - started)} ms)`);
    primary = knex({ client: 'pg', connection: pair.primaryUrl, pool: { min: 0, max: 2 } });
    replica = knex({ client: 'pg', connection: pair.replicaUrl, pool: { min: 0, max: 2 } });
  });

  after(async function () {
    await primary?.destroy();
    await replica?.destroy();
    await pair?.stop();
  });

  const replayLsn = async () =>
    (await replica.raw('SELECT pg_last_wal_replay_lsn()::text AS lsn')).rows[0].lsn as string;
  const receiveLsn = async () =>
    (await replica.raw('SELECT pg_last_wal_receive_lsn()::text AS lsn')).rows[0].lsn as string;
  const lsnAfter = async (a: string, b: string) =>
    (await primary.raw('SELECT ?::pg_lsn > ?::pg_lsn AS after', [a, b])).rows[0].after as boolean;
  const replicaCount = async () => Number((await replica.raw('SELECT count(*) AS n FROM replicated')).rows[0].n);

  it('streams writes from the primary to a read-only replica', async function () {
    assert.equal((await replica.raw('SELECT pg_is_in_recovery() AS r')).rows[0].r, true);
    await primary.raw('CREATE TABLE replicated (id bigint PRIMARY KEY)');
    await primary.raw('INSERT INTO replicated SELECT g FROM generate_series(1, 100) AS g');
    await pair.waitForCatchUp();
    assert.equal(await replicaCount(), 100);
    await assert.rejects(replica.raw('INSERT INTO replicated VALUES (0)'), /read-only transaction/);
  });

  it('holds replay still while paused although WAL keeps arriving, then catches up on resume', async function () {
    await pair.pauseReplay();
    const pausedAt = await replayLsn();
    const countWhenPaused = await replicaCount();

    await primary.raw('INSERT INTO replicated SELECT g FROM generate_series(101, 5000) AS g');
    // Proof that the replica is being fed: received WAL moves past the paused replay position.
    await waitFor(async () => lsnAfter(await receiveLsn(), pausedAt), { description: 'WAL to reach the replica' });
    await holdsFor(async () => (await replayLsn()) === pausedAt, 300, {
      description: 'replay held still while paused',
    });
    assert.equal(await replayLsn(), pausedAt, 'replay LSN must not advance while paused');
    assert.equal(await replicaCount(), countWhenPaused);

    await pair.resumeReplay();
    await pair.waitForCatchUp();
    assert.ok(await lsnAfter(await replayLsn(), pausedAt));
    assert.equal(await replicaCount(), 5000);
  });
});
