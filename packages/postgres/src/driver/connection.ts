import type { Knex } from 'knex';

/**
 * The one place that knows knex's pg dialect hands out node-postgres clients. Every module that needs a
 * connection of its own (a session lock, a LISTEN, a DDL attempt, a backfill worker, a controller's leadership)
 * takes it here, pooled or dedicated, and sees only this shape.
 */

/** A NOTIFY message as node-postgres delivers it. */
export interface PgNotification {
  readonly channel: string;
  readonly payload?: string;
}

export interface PgResult {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number | null;
}

/** The part of a node-postgres Client phaseflag uses. */
export interface PgConnection {
  query(text: string, values?: readonly unknown[]): Promise<PgResult>;
  /** The extended protocol parses exactly one statement: text holding two is an error, not two executions. */
  query(config: { text: string; queryMode: 'extended' }): Promise<PgResult>;
  /** The server process id of this session, null before it connected. */
  readonly processID: number | null;
  on(event: 'notification', listener: (message: PgNotification) => void): unknown;
  on(event: 'error' | 'end', listener: (...args: unknown[]) => void): unknown;
  removeListener(event: 'notification', listener: (message: PgNotification) => void): unknown;
  removeAllListeners(event: string): unknown;
  end(): Promise<void>;
}

/** What knex's pg client offers beyond its public API: the pool and raw connections. */
interface KnexPgClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  acquireRawConnection(): Promise<unknown>;
  destroyRawConnection(connection: unknown): Promise<void>;
  pool?: { max?: number };
}

function client(knex: Knex): KnexPgClient {
  return knex.client as unknown as KnexPgClient;
}

/** Takes a connection from knex's pool; hand it back with `releasePooled`. */
export async function acquirePooled(knex: Knex): Promise<PgConnection> {
  return (await client(knex).acquireConnection()) as PgConnection;
}

export function releasePooled(knex: Knex, connection: PgConnection): Promise<void> {
  return client(knex).releaseConnection(connection);
}

/** Runs `work` on one pooled connection and hands it back whatever happens. */
export async function withPooledConnection<T>(knex: Knex, work: (connection: PgConnection) => Promise<T>): Promise<T> {
  const connection = await acquirePooled(knex);
  try {
    return await work(connection);
  } finally {
    await releasePooled(knex, connection);
  }
}

/**
 * Marks a pooled connection as unfit to go back (a failed rollback, a session setting that could not be reset):
 * knex destroys it on release instead of handing it to the application.
 */
export function discardOnRelease(connection: PgConnection, why: string): void {
  (connection as { __knex__disposed?: unknown }).__knex__disposed = why;
}

/**
 * A connection outside the pool, with knex's connection settings: for a session that must outlive any pooled
 * checkout (a leadership lock), which the pool would otherwise reset or hand to someone else.
 */
export async function openDedicated(knex: Knex): Promise<PgConnection> {
  return (await client(knex).acquireRawConnection()) as PgConnection;
}

export function closeDedicated(knex: Knex, connection: PgConnection): Promise<void> {
  return client(knex).destroyRawConnection(connection);
}

/** The pool's size (knex's default, 10, when not configured). */
export function poolMax(knex: Knex): number {
  return Number(client(knex).pool?.max ?? 10);
}
