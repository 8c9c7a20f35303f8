import assert from 'node:assert/strict';
import pg from 'pg';
import { LOCAL_DATABASE_URL, ensurePgBouncer, startPgBouncer, type PgBouncer } from '../src/index.js';

describe('startPgBouncer', function () {
  let bouncer: PgBouncer;
  const clients: pg.Client[] = [];
  const connect = async () => {
    const c = new pg.Client(bouncer.url);
    await c.connect();
    clients.push(c);
    return c;
  };
  const pid = async (c: pg.Client) => (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;

  before(async function () {
    const reason = ensurePgBouncer();
    if (reason) {
      console.log(`      (skipped: ${reason})`);
      this.skip();
    }
    bouncer = await startPgBouncer({ target: process.env.PHASEFLAG_DATABASE_URL ?? LOCAL_DATABASE_URL, poolSize: 2 });
  });

  after(async function () {
    for (const c of clients) await c.end().catch(() => undefined);
    await bouncer?.stop();
  });

  it('pools in transaction mode: two clients share one server connection, and session state leaks between them', async function () {
    const a = await connect();
    const b = await connect();
    assert.equal(bouncer.poolMode, 'transaction');
    // The last server connection given back is handed out next (PgBouncer's LIFO default).
    assert.equal(await pid(a), await pid(b));
    await a.query('SELECT pg_try_advisory_lock(424242)');
    const seen = await b.query(
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242 AND pid = pg_backend_pid()",
    );
    assert.equal(seen.rows[0].n, 1, "b's transaction ran on the server connection that holds a's session lock");
    await b.query('SELECT pg_advisory_unlock_all()');
  });

  it('pins a client to its server connection for the length of a transaction', async function () {
    const a = await connect();
    const b = await connect();
    await a.query('BEGIN');
    const inTx = await pid(a);
    assert.notEqual(await pid(b), inTx);
    assert.equal(await pid(a), inTx);
    await a.query('COMMIT');
  });

  it('stops and frees its port', async function () {
    const other = await startPgBouncer({ target: process.env.PHASEFLAG_DATABASE_URL ?? LOCAL_DATABASE_URL });
    await other.stop();
    const c = new pg.Client(other.url);
    await assert.rejects(c.connect());
  });
});
