import type { ExecutorContext } from '../context.js';
import { advisoryKey, advisoryLockHolder, advisoryUnlock, tryAdvisoryLock } from '../driver/advisory.js';
import { closeDedicated, openDedicated, type PgConnection } from '../driver/connection.js';
import { assertSessionConnection } from '../driver/pooler.js';

/** Who holds a migration's leadership lock, as far as pg_stat_activity can tell. */
export interface LeaderInfo {
  readonly pid: number;
  readonly applicationName: string | null;
}

/**
 * Leadership of migrations through session-level advisory locks, all held on one dedicated connection taken
 * outside the pool (a pooled one would be handed to someone else, or reset). `pg_try_advisory_lock` never
 * waits: a follower simply tries again at its next interval. The lock lives exactly as long as the session, so
 * when a leader's process dies the server ends the session and frees the lock (at once on one host; after TCP
 * keepalives across a network), and the next follower's try takes over.
 *
 * The connection is checked before each use; if it errors, ends, or does not answer within `probeTimeoutMs`,
 * every leadership it carried is reported lost (another process may hold the locks by now) and the next try
 * opens a new connection.
 */
export class LeaderLocks {
  private connection: PgConnection | undefined;
  private opening: Promise<PgConnection> | undefined;
  private readonly held = new Set<string>();
  private closed = false;

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly options: {
      instanceId: string;
      onLost: (migrationIds: string[], why: string) => void;
      probeTimeoutMs?: number;
    },
  ) {}

  private key(migrationId: string): string {
    return advisoryKey('leader', `${this.ctx.stateSchema}:${migrationId}`);
  }

  isLeader(migrationId: string): boolean {
    return this.held.has(migrationId);
  }

  /** Takes the leadership of a migration if nobody holds it; true when this process leads it (now or already). */
  async tryAcquire(migrationId: string): Promise<boolean> {
    if (this.closed) return false;
    if (this.held.has(migrationId)) return this.confirm();
    const conn = await this.open();
    try {
      // Session locks stack per session: take it only when not held, so one unlock always releases it.
      const got = await this.timed(tryAdvisoryLock(conn, this.key(migrationId)));
      if (got && this.connection === conn) this.held.add(migrationId);
      return got && this.connection === conn;
    } catch (error) {
      this.drop(conn, `leader connection failed: ${(error as Error).message}`);
      throw error;
    }
  }

  /** True while the connection that carries the locks answers (so the server still holds them for us). */
  async confirm(): Promise<boolean> {
    const conn = this.connection;
    if (!conn || this.held.size === 0) return false;
    try {
      await this.timed(conn.query('SELECT 1'));
      return this.connection === conn;
    } catch (error) {
      this.drop(conn, `leader connection failed: ${(error as Error).message}`);
      return false;
    }
  }

  async release(migrationId: string): Promise<void> {
    if (!this.held.delete(migrationId)) return;
    if (this.connection) await advisoryUnlock(this.connection, this.key(migrationId));
  }

  /** The backend holding a migration's leadership lock (any process), or null when it is free. */
  async holder(migrationId: string): Promise<LeaderInfo | null> {
    const r = await advisoryLockHolder(this.ctx.knex, this.key(migrationId));
    return r ? { pid: r.pid, applicationName: r.application_name } : null;
  }

  /** Releases every lock by ending the session. */
  async close(): Promise<void> {
    this.closed = true;
    this.held.clear();
    const conn = this.connection ?? (await this.opening?.catch(() => undefined));
    this.connection = undefined;
    if (conn) await closeDedicated(this.ctx.knex, conn).catch(() => undefined);
  }

  private async open(): Promise<PgConnection> {
    if (this.connection) return this.connection;
    this.opening ??= (async () => {
      // A leadership lock taken through a transaction pooler would stay on a server connection others get next.
      await assertSessionConnection(this.ctx.knex, 'lead migrations (controller)');
      const conn = await openDedicated(this.ctx.knex);
      conn.on('error', (e) => this.drop(conn, `leader connection error: ${(e as Error)?.message ?? e}`));
      conn.on('end', () => this.drop(conn, 'leader connection ended'));
      // Named, so that an operator sees in pg_stat_activity which instance leads (see holder()).
      await conn.query(`SELECT set_config('application_name', $1, false)`, [
        `phaseflag-controller ${this.options.instanceId}`.slice(0, 63),
      ]);
      if (this.closed) {
        await closeDedicated(this.ctx.knex, conn).catch(() => undefined);
        throw new Error('the controller is stopped');
      }
      this.connection = conn;
      return conn;
    })().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private drop(conn: PgConnection, why: string): void {
    if (this.connection !== conn) return;
    this.connection = undefined;
    const lost = [...this.held];
    this.held.clear();
    void closeDedicated(this.ctx.knex, conn).catch(() => undefined);
    if (lost.length > 0 && !this.closed) this.options.onLost(lost, why);
  }

  private timed<T>(query: Promise<T>): Promise<T> {
    const ms = this.options.probeTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    });
    return Promise.race([query, timeout]).finally(() => clearTimeout(timer));
  }
}
