import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { ATTR, defineMigration, isPhaseflagError, METRIC, SPAN, StaticFlagSource } from '@phaseflag/core';
import {
  amountInput,
  canStartReplica,
  captureMetrics,
  captureSpans,
  createAmountTable,
  replicaUnavailableReason,
  startReplica,
  waitFor,
  type ReplicaPair,
} from '@phaseflag/testkit';
import knex, { type Knex } from 'knex';
import { Phaseflag, type KnexRouter, type MigrationHandle } from '../src/index.js';
import { createContext } from '../src/context.js';
import { installStateStore } from '../src/store/installer.js';
import { SCHEMA_VERSIONS } from '../src/store/schema.js';

interface Line {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

/** A port nothing listens on: taken from the OS, then given back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a router that reads from a streaming replica', function () {
  this.timeout(180_000);
  let pair: ReplicaPair | undefined;
  let primary: Knex;
  let replica: Knex;
  let pf: Phaseflag;
  let h: MigrationHandle;
  const lines: Line[] = [];
  const routers: KnexRouter[] = [];
  const extraKnex: Knex[] = [];
  const spans = captureSpans();
  const metrics = captureMetrics();
  const id = 'orders-amount';
  const flags = new StaticFlagSource({ [`${id}.read-new`]: true });
  const say = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push({ level, message, fields });

  before(async function () {
    if (!canStartReplica()) {
      // Mocha has no skip reason; print it so a skipped suite is never mistaken for a pass.
      console.log(`      (skipped: ${replicaUnavailableReason()})`);
      this.skip();
    }
    pair = await startReplica();
    primary = knex({ client: 'pg', connection: pair.primaryUrl, pool: { min: 0, max: 6 } });
    replica = knex({ client: 'pg', connection: pair.replicaUrl, pool: { min: 0, max: 2 } });
    pf = new Phaseflag({
      knex: primary,
      stateSchema: 'pf_state',
      pollIntervalMs: 100,
      graceMs: 0,
      logger: { debug() {}, info: say('info'), warn: say('warn'), error: say('error') },
    });
    await pf.install();
    await createAmountTable(primary, 'orders', 3000);
    h = pf.migration(defineMigration(amountInput(id, 'orders')));
  });

  after(async () => {
    for (const r of routers) await r.close();
    await pf?.close();
    for (const k of extraKnex) await k.destroy();
    await primary?.destroy();
    await replica?.destroy();
    await pair?.stop();
  });

  const open = async (options: Parameters<MigrationHandle['router']>[1]) => {
    const r = await h.router(flags, options);
    routers.push(r);
    return r;
  };
  /** The amounts of three rows as `select()` reads them, run on the given server. */
  const amounts = async (db: Knex, r: KnexRouter) =>
    (
      await db('orders')
        .select(r.select({ userId: 'u1' }))
        .whereIn('id', [1, 2, 3000])
        .orderBy('id')
    ).map((x: { amount: string | null }) => x.amount);
  const instance = async (instanceId: string) => (await h.status()).instances.find((i) => i.instanceId === instanceId);

  it('keeps reads on the old column until the replica replays past the verified position, then switches', async () => {
    const p = pair!;
    await h.expand();
    await h.startDualWrite();
    await p.waitForCatchUp(); // the replica has the new column, empty
    await p.pauseReplay();
    await h.backfill();
    await h.verify();

    // The position is recorded with the transition: in the record, the event and the span.
    const status = await h.status();
    const lsn = status.record.verifiedLsn;
    assert.match(lsn ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
    const event = status.events.find((e) => e.kind === 'transition' && e.action === 'verify');
    assert.equal(event?.detail?.verifiedLsn, lsn);
    const span = spans
      .byName(SPAN.transition)
      .find((s) => s.attributes[ATTR.action] === 'verify' && s.attributes[ATTR.migrationId] === h.id);
    assert.equal(span?.attributes[ATTR.verifiedLsn], lsn);
    const replayed = (await replica.raw('SELECT pg_last_wal_replay_lsn()::text AS l')).rows[0].l as string;
    assert.equal((await primary.raw('SELECT ?::pg_lsn > ?::pg_lsn AS behind', [lsn, replayed])).rows[0].behind, true);

    const onReplica = await open({ replica, replicaCheckMs: 50, heartbeatMs: 100, instanceId: 'reads-replica' });
    const onPrimary = await open({ heartbeatMs: 0 });
    await h.readNew();
    await waitFor(() => onPrimary.column({ userId: 'u1' }) === 'amount', {
      timeoutMs: 5000,
      description: 'the router without a replica to read new',
    });
    await waitFor(
      () => lines.some((l) => /reads from the replica stay on the old column: the replica replayed/.test(l.message)),
      {
        timeoutMs: 5000,
        description: 'the replica router to find the replica behind',
      },
    );
    assert.equal(onReplica.core.currentPhase, 'read-new');
    assert.equal(onReplica.column({ userId: 'u1' }), 'amount_cents');
    assert.equal(onReplica.decide({ userId: 'u1' }).read, 'old');
    assert.deepEqual(onReplica.decide({ userId: 'u1' }), {
      ...onPrimary.decide({ userId: 'u1' }),
      read: 'old',
      readColumn: 'amount_cents',
    });
    // What that means on the replica: the new column is still empty there; select() derives it from the old one.
    assert.deepEqual(await amounts(replica, onReplica), ['0.37', '0.74', '110.00']);
    assert.deepEqual(await amounts(replica, onPrimary), [null, null, null], 'reading new there would read nothing');
    const warning = lines.find((l) => /stay on the old column/.test(l.message))!;
    assert.equal(warning.fields?.[ATTR.verifiedLsn], lsn);
    assert.ok(Number(warning.fields?.lagBytes) > 0);
    assert.ok((await metrics.sum(METRIC.replicaLagHold, { [ATTR.migrationId]: id, [ATTR.reason]: 'lagging' })) >= 1);
    await waitFor(async () => (await instance('reads-replica'))?.readsOld === true, {
      timeoutMs: 5000,
      description: 'the held instance to report reading old',
    });
    await assert.rejects(
      h.contract({ confirm: true }),
      (e) => isPhaseflagError(e) && /reads-replica/.test(e.message),
      'contract waits for the instance that still reads old',
    );

    await p.resumeReplay();
    await waitFor(() => onReplica.column({ userId: 'u1' }) === 'amount', {
      timeoutMs: 20_000,
      description: 'the replica router to read new once the replica caught up',
    });
    assert.deepEqual(await amounts(replica, onReplica), ['0.37', '0.74', '110.00']);
    assert.ok(lines.some((l) => l.level === 'info' && /the replica caught up/.test(l.message)));
    assert.equal(
      lines.filter((l) => /stay on the old column: the replica replayed/.test(l.message)).length,
      1,
      'logged once',
    );
    await waitFor(async () => (await instance('reads-replica'))?.readsOld === false, {
      timeoutMs: 5000,
      description: 'the instance to report reading new only',
    });
  });

  it('reads old while the replica cannot be asked, and new from a server that is not in recovery', async () => {
    assert.equal((await h.status()).record.phase, 'read-new');
    const gone = knex({
      client: 'pg',
      connection: `postgres://postgres@127.0.0.1:${await closedPort()}/postgres`,
      pool: { min: 0, max: 1 },
      acquireConnectionTimeout: 1000,
    });
    extraKnex.push(gone);
    const unreachable = await open({ replica: gone, replicaCheckMs: 50, heartbeatMs: 0 });
    assert.equal(unreachable.column({ userId: 'u1' }), 'amount_cents');
    assert.ok(lines.some((l) => /stay on the old column: the replica cannot be asked/.test(l.message)));

    const primaryAsReplica = await open({ replica: primary, heartbeatMs: 0 });
    assert.equal(primaryAsReplica.column({ userId: 'u1' }), 'amount', 'a primary has everything');
  });

  it('refuses a replica that is not a knex instance, or a check interval it cannot keep, naming the value', async () => {
    const refused = async (options: Record<string, unknown>, value: unknown) =>
      assert.rejects(h.router(flags, options), (e) => {
        assert.ok(isPhaseflagError(e) && e.code === 'PF_INVALID_OPTIONS', String(e));
        assert.deepEqual(e.value, value);
        assert.ok(e.hint);
        return true;
      });
    await refused({ replica: 'postgres://app:s3cret@replica/db' }, 'postgres://app:***@replica/db');
    await refused({ replica: {} }, 'object');
    await refused({ replica, replicaCheckMs: 0 }, 0);
    await refused({ replicaCheckMs: 500 }, 500);
  });

  it('gives migrations verified before the upgrade the position of the upgrade', async () => {
    const ctx = createContext({ knex: primary, stateSchema: 'pf_old', actor: 'test' });
    await primary.transaction(async (trx) => {
      await trx.raw('CREATE SCHEMA pf_old');
      await trx.raw(
        'CREATE TABLE pf_old.schema_version (version integer NOT NULL, installed_at timestamptz NOT NULL DEFAULT now())',
      );
      for (const v of SCHEMA_VERSIONS.filter((x) => x.version <= 4)) {
        await v.up(trx, 'pf_old');
        await trx.raw('INSERT INTO pf_old.schema_version (version) VALUES (?)', [v.version]);
      }
      const row = { table_schema: 'public', table_name: 'orders', new_column: 'amount', definition: '{}' };
      await trx('pf_old.migrations').insert([
        { ...row, id: 'was-read-new', phase: 'read-new' },
        { ...row, id: 'was-backfilled', phase: 'backfilled' },
      ]);
    });
    const before = (await primary.raw('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l as string;
    assert.deepEqual(await installStateStore(ctx), { from: 4, to: 7 });
    const rows = (
      await primary.raw(
        'SELECT id, verified_lsn::text AS lsn, verified_lsn >= ?::pg_lsn AS after_upgrade FROM pf_old.migrations ORDER BY id',
        [before],
      )
    ).rows;
    assert.deepEqual(rows, [
      { id: 'was-backfilled', lsn: null, after_upgrade: null },
      { id: 'was-read-new', lsn: rows[1].lsn, after_upgrade: true },
    ]);
  });
});
