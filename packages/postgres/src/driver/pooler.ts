import { ConfigError, redactUrl } from '@phaseflag/core';
import type { Knex } from 'knex';
import { acquirePooled, closeDedicated, openDedicated, releasePooled, type PgConnection } from './connection.js';

/**
 * Whether a knex instance reaches Postgres through a transaction (or statement) pooler such as PgBouncer in
 * `pool_mode = transaction`: a client is then lent a server connection for one transaction at a time, so what
 * a session holds (an advisory lock, LISTEN, a `SET`) stays on a server connection another client gets next.
 *
 * Told by behaviour, not by name (PgBouncer, pgcat, Supavisor and hosted poolers answer like Postgres): two
 * connections of our own, A and B, ask for their backend's pid in turns. Directly, or through a session pooler,
 * each client keeps one server connection for its whole life, so A and B never share a pid and neither pid ever
 * changes. Through a transaction pooler, B is lent the server connection A has just given back (PgBouncer hands
 * out the last one released first), or A comes back on another one. A few rounds settle it.
 */
export function detectTransactionPooler(knex: Knex, own?: PgConnection): Promise<boolean> {
  let known = detected.get(knex);
  if (!known) {
    known = probe(knex, own);
    detected.set(knex, known);
    // A probe that could not connect says nothing: the next caller probes again.
    known.catch(() => detected.delete(knex));
  }
  return known;
}

/** One answer per knex instance: its connection settings do not change. */
const detected = new WeakMap<Knex, Promise<boolean>>();

const ROUNDS = 3;

/** `own`: a connection outside the pool the caller opened anyway (the watcher's LISTEN one), used as A and kept. */
async function probe(knex: Knex, own?: PgConnection): Promise<boolean> {
  const a = own ?? (await openDedicated(knex));
  let b: PgConnection | undefined;
  try {
    // With the caller's own connection as A, B is one of the pool's, which the caller's queries use next anyway:
    // telling a pooler then opens no connection of its own.
    b = own ? await acquirePooled(knex) : await openDedicated(knex);
    const firstA = await backendPid(a);
    const firstB = await backendPid(b);
    if (firstA === firstB) return true;
    for (let round = 0; round < ROUNDS; round++) {
      if ((await backendPid(a)) !== firstA || (await backendPid(b)) !== firstB) return true;
    }
    return false;
  } finally {
    if (!own) await closeDedicated(knex, a).catch(() => undefined);
    if (b && own) await releasePooled(knex, b).catch(() => undefined);
    else if (b) await closeDedicated(knex, b).catch(() => undefined);
  }
}

async function backendPid(connection: PgConnection): Promise<number> {
  return Number((await connection.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
}

/**
 * For the operator side, before it changes or locks anything: a step lock, a backfill's runner lock, a controller's
 * leadership, LISTEN for knobs and the session settings of CONCURRENTLY statements all live in a session, which a
 * transaction pooler does not keep. PF_TRANSACTION_POOLER then, instead of a misleading conflict later. A probe that
 * cannot connect leaves the decision to what follows (which reports the connection error itself).
 */
export async function assertSessionConnection(knex: Knex, what: string): Promise<void> {
  const pooled = await detectTransactionPooler(knex).catch(() => false);
  if (!pooled) return;
  const target = connectionTarget(knex);
  throw new ConfigError(
    'PF_TRANSACTION_POOLER',
    `Cannot ${what} through a transaction pooler (${target}): phaseflag's operator side holds a session (advisory locks, LISTEN, session settings), which transaction pooling does not keep.`,
    {
      value: target,
      hint: "Set `directUrl` (or PHASEFLAG_DIRECT_URL / --direct-url in the CLI) to the database's own address (or the pooler in session mode); services may keep the pooled URL.",
    },
  );
}

/** host:port/database of a knex instance's connection, without credentials (for messages). */
export function connectionTarget(knex: Knex): string {
  const config = (knex.client as { config?: { connection?: unknown } }).config?.connection;
  const fromUrl = (url: string): string => {
    if (!URL.canParse(url)) return redactUrl(url);
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
  };
  if (typeof config === 'string') return fromUrl(config);
  if (config && typeof config === 'object') {
    const c = config as { connectionString?: unknown; host?: unknown; port?: unknown; database?: unknown };
    if (typeof c.connectionString === 'string') return fromUrl(c.connectionString);
    return `${String(c.host ?? 'localhost')}:${String(c.port ?? 5432)}/${String(c.database ?? '')}`;
  }
  return 'the configured connection';
}
