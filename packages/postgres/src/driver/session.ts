import { quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import { advisoryUnlock, tryAdvisoryLock } from './advisory.js';
import {
  acquirePooled,
  closeDedicated,
  discardOnRelease,
  openDedicated,
  releasePooled,
  type PgConnection,
  type PgNotification,
} from './connection.js';

/**
 * One pooled connection held for the length of a run. Backfill and verify need this for three reasons: a
 * session-level advisory lock lives exactly as long as its connection (so a runner that dies releases it), each
 * batch is BEGIN…COMMIT on one connection, and the statement texts are built once per run with `$n` parameters
 * and sent as they are (knex would rescan each text for `?`, which a user's expression may legitimately contain,
 * e.g. the jsonb `?` operator).
 */
export class Session {
  private constructor(
    private readonly knex: Knex,
    private readonly client: PgConnection,
    private readonly dedicated = false,
  ) {}

  static async open(knex: Knex): Promise<Session> {
    return new Session(knex, await acquirePooled(knex));
  }

  /** A session on a connection outside the pool (closed on release), for a lock held while pooled ones work. */
  static async openDedicated(knex: Knex): Promise<Session> {
    return new Session(knex, await openDedicated(knex), true);
  }

  /** The server process id of this session's backend (null before it connected). */
  get pid(): number | null {
    return this.client.processID;
  }

  async query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<R[]> {
    const result = await this.client.query(text, values);
    return result.rows as R[];
  }

  /** Runs a statement and returns how many rows it affected. */
  async execute(text: string, values?: readonly unknown[]): Promise<number> {
    return (await this.client.query(text, values)).rowCount ?? 0;
  }

  async one<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<R | undefined> {
    return (await this.query<R>(text, values))[0];
  }

  /**
   * Runs `fn` in one transaction. `lockTimeoutMs` bounds how long a statement may queue behind an application's
   * row lock: the batch is the one that should give way, and it is retried, rather than holding the rows it has
   * already changed while it waits. `searchPath` pins the schemas the migration's expressions were resolved in,
   * so a function name means the same function here as in the sync trigger, whatever this pool's search_path.
   */
  /**
   * Several statements in one round trip (the simple protocol: values must be inlined as literals), each one's rows
   * and row count, in order. One failing statement fails the call; in a transaction block, the rest do not run.
   */
  async many(statements: readonly string[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number }[]> {
    const out = await this.client.query(statements.join(';\n'));
    const results = (Array.isArray(out) ? out : [out]) as {
      rows: Record<string, unknown>[];
      rowCount: number | null;
    }[];
    return results.map((r) => ({ rows: r.rows, rowCount: r.rowCount ?? 0 }));
  }

  async transaction<T>(
    fn: (first: Record<string, unknown>[][]) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    // One round trip; SET LOCAL ends with the transaction, so nothing leaks into the pooled connection.
    const prelude = [options.readOnly ? 'BEGIN READ ONLY' : 'BEGIN'];
    if (options.lockTimeoutMs !== undefined)
      prelude.push(`SET LOCAL lock_timeout = ${Math.max(0, Math.floor(options.lockTimeoutMs))}`);
    if (options.searchPath !== undefined) prelude.push(`SET LOCAL search_path = ${searchPathSql(options.searchPath)}`);
    if (options.asyncCommit) prelude.push('SET LOCAL synchronous_commit = off');
    if (options.lockRowExclusive !== undefined)
      prelude.push(`LOCK TABLE ${options.lockRowExclusive} IN ROW EXCLUSIVE MODE`);
    try {
      // Inside the try: a prelude that fails (LOCK TABLE hitting lock_timeout) must still roll back.
      const first = options.first ?? [];
      const results = await this.many([...prelude, ...first]);
      const value = await fn(results.slice(results.length - first.length).map((r) => r.rows));
      await this.client.query('COMMIT');
      return value;
    } catch (error) {
      await this.rollbackQuietly();
      throw error;
    }
  }

  /**
   * Runs one statement of someone else's SQL in a READ ONLY transaction under `statement_timeout`, and rolls it
   * back whatever happens (a session setting it changed is undone with it). The extended protocol parses exactly
   * one statement: text holding two is an error, not two executions.
   */
  async readOnly(text: string, statementTimeoutMs: number): Promise<Record<string, unknown> | undefined> {
    await this.client.query(
      `BEGIN READ ONLY; SET LOCAL statement_timeout = ${Math.max(1, Math.floor(statementTimeoutMs))}`,
    );
    try {
      return (await this.client.query({ text, queryMode: 'extended' })).rows[0];
    } finally {
      await this.rollbackQuietly();
    }
  }

  /**
   * Hands the connection back after readOnly(): its transactions were all rolled back, which undoes settings;
   * what survives a rollback is a session-level advisory lock, released here. Closed instead if that fails.
   */
  async releaseAfterForeignSql(): Promise<void> {
    try {
      await this.client.query('SELECT pg_advisory_unlock_all()');
    } catch {
      discardOnRelease(this.client, 'phaseflag: could not reset a connection after the throttle query');
      await this.client.end().catch(() => undefined);
    }
    await this.release();
  }

  async rollback(): Promise<void> {
    await this.client.query('ROLLBACK');
  }

  private async rollbackQuietly(): Promise<void> {
    try {
      await this.client.query('ROLLBACK');
    } catch {
      // The connection is broken (the original error says why); never hand it back to the pool.
      discardOnRelease(this.client, 'phaseflag: rollback failed');
    }
  }

  /** NOTIFY messages for the channels this session LISTENs to (node-postgres delivers them while it is idle too). */
  onNotification(listener: (msg: PgNotification) => void): void {
    this.client.on('notification', listener);
  }

  offNotification(listener: (msg: PgNotification) => void): void {
    this.client.removeListener('notification', listener);
  }

  /** Session-level: held until unlocked or until this connection closes (crash, kill, network loss). */
  tryAdvisoryLock(key: string): Promise<boolean> {
    return tryAdvisoryLock(this.client, key);
  }

  /** Gives the lock back; if that fails the connection is closed, which releases it server-side. */
  advisoryUnlock(key: string): Promise<void> {
    return advisoryUnlock(this.client, key);
  }

  async release(): Promise<void> {
    if (this.dedicated) await closeDedicated(this.knex, this.client).catch(() => undefined);
    else await releasePooled(this.knex, this.client);
  }
}

export interface TransactionOptions {
  lockTimeoutMs?: number;
  /** Schemas, in order; an empty list leaves only pg_catalog (and pg_temp) visible. */
  searchPath?: readonly string[];
  readOnly?: boolean;
  /**
   * COMMIT returns before the WAL is flushed (synchronous_commit = off, for this transaction only). For work that
   * is redone when lost; see worker.ts for why a backfill batch is such work.
   */
  asyncCommit?: boolean;
  /**
   * A table (already quoted and qualified) to lock in ROW EXCLUSIVE mode first: the lock an UPDATE takes anyway,
   * taken before the transaction reads the catalog, so no trigger can be created or enabled on the table until
   * it commits.
   */
  lockRowExclusive?: string;
  /**
   * Statements (values inlined as literals) sent in the same round trip as BEGIN and the settings, after them: the
   * callback gets their rows, in order. A batch saves two round trips of its six this way (see worker.ts).
   */
  first?: readonly string[];
}

/** `"a", "b"`, or `''` for an empty path (SET would reject an empty list). */
export function searchPathSql(schemas: readonly string[]): string {
  return schemas.length === 0 ? "''" : schemas.map(quoteIdent).join(', ');
}

/** Postgres errors after which the same batch may simply be tried again. */
export function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === '40001' /* serialization_failure */ || code === '40P01' /* deadlock_detected */ || code === '55P03'
  ); /* lock_not_available */
}
