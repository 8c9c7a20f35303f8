import type { PhaseSnapshot } from '@phaseflag/core';
import { isPhase } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { closeDedicated, openDedicated, type PgConnection, type PgNotification } from '../driver/connection.js';
import { detectTransactionPooler } from '../driver/pooler.js';

type Listener = (snapshot: PhaseSnapshot) => void;

/**
 * Tells listeners of phase changes: at once through LISTEN/NOTIFY (every transition notifies in its own
 * transaction), and by polling as a backstop, since a notification is lost while the listening connection is
 * down. One connection and one poll serve every migration this process watches. Through a transaction pooler
 * LISTEN would be registered on a server connection other clients are lent next: it polls only then.
 */
export class PhaseWatcher {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly last = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private connection: PgConnection | undefined;
  private connecting: Promise<void> | undefined;
  private closed = false;
  /** Connections given back after they failed (each is given back once). */
  private readonly dropped = new WeakSet<PgConnection>();
  /** The state store failed to answer the last poll: said once per failure streak. */
  private unreadable = false;
  /** A transaction pooler is in the way: no LISTEN, the poll alone tells phase changes. */
  private pollingOnly = false;
  private polling: Promise<void> | undefined;
  private pollAgain = false;

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly options: {
      channel: string;
      pollIntervalMs: number;
      /** Runs the poll's query in turn with the store's other background queries (one pooled connection). */
      inTurn: <T>(fn: () => Promise<T>) => Promise<T>;
    },
  ) {}

  watch(migrationId: string, listener: Listener): () => void {
    let set = this.listeners.get(migrationId);
    if (!set) this.listeners.set(migrationId, (set = new Set()));
    set.add(listener);
    this.start();
    void this.poll();
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(migrationId);
    };
  }

  private start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.poll(), this.options.pollIntervalMs);
    this.timer.unref();
    this.connecting ??= this.listen();
  }

  private async listen(): Promise<void> {
    let conn: PgConnection | undefined;
    try {
      if (this.pollingOnly) return;
      // A connection of its own, outside the pool (LISTEN is per session): a pool of one stays free for queries.
      // It is also one side of the pooler probe (a pooled one the poll uses next is the other): no extra connection.
      conn = await openDedicated(this.ctx.knex);
      if (this.closed || (await this.pooled(conn))) {
        await this.release(conn);
        return;
      }
      this.connection = conn;
      const listening = conn;
      conn.on('notification', (msg) => this.onNotification(msg));
      conn.on('error', () => this.lost(listening));
      conn.on('end', () => this.lost(listening));
      await conn.query(`LISTEN "${this.options.channel.replace(/"/g, '""')}"`);
    } catch (error) {
      this.ctx.logger.warn('phaseflag: cannot LISTEN for phase changes; polling only', {
        error: (error as Error).message,
      });
      if (conn) this.lost(conn);
      else this.reconnectLater();
    }
  }

  /** Whether the knex is behind a transaction pooler: said once (info), then polling only for good. */
  private async pooled(conn: PgConnection): Promise<boolean> {
    // A probe that cannot connect tells nothing: LISTEN is tried (and fails and retries) as without a pooler.
    // In turn with the store's other background queries: the pooled side of the probe is the connection they use.
    const pooled = this.options.inTurn(() => detectTransactionPooler(this.ctx.knex, conn));
    if (!(await pooled.catch(() => false))) return false;
    this.pollingOnly = true;
    this.ctx.logger.info(
      `phaseflag: connected through a transaction pooler (LISTEN/NOTIFY unavailable): polling the state store every ${this.options.pollIntervalMs} ms`,
    );
    return true;
  }

  /**
   * The LISTEN connection failed (terminated backend, restart, network): it is closed at once and the watcher
   * listens again later on a new one. Kept, a dead connection would linger for good.
   */
  private lost(conn: PgConnection): void {
    if (this.dropped.has(conn)) return; // 'error' and 'end' both come
    this.dropped.add(conn);
    conn.removeAllListeners('notification');
    if (this.connection === conn) this.connection = undefined;
    this.release(conn).catch(() => undefined);
    this.reconnectLater();
  }

  private reconnectLater(): void {
    if (this.closed) return;
    this.connection = undefined;
    this.connecting = undefined;
    const t = setTimeout(() => {
      if (!this.closed && this.listeners.size > 0) this.connecting ??= this.listen();
    }, this.options.pollIntervalMs);
    t.unref();
  }

  private onNotification(msg: PgNotification): void {
    if (msg.channel !== this.options.channel || !msg.payload) return;
    try {
      const p = JSON.parse(msg.payload) as { id: string; phase: string; version: number };
      this.emit({ migrationId: p.id, phase: isPhase(p.phase) ? p.phase : 'unknown', version: p.version });
    } catch {
      void this.poll();
    }
  }

  private emit(snapshot: PhaseSnapshot): void {
    const prev = this.last.get(snapshot.migrationId);
    if (prev !== undefined && prev >= snapshot.version) return;
    this.last.set(snapshot.migrationId, snapshot.version);
    for (const l of this.listeners.get(snapshot.migrationId) ?? []) l(snapshot);
  }

  /** One poll at a time: a call while one runs asks for one more after it (a migration watched meanwhile). */
  private poll(): Promise<void> {
    if (this.polling) {
      this.pollAgain = true;
      return this.polling;
    }
    this.polling = this.pollOnce().finally(() => {
      this.polling = undefined;
      if (this.pollAgain) {
        this.pollAgain = false;
        void this.poll();
      }
    });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const ids = [...this.listeners.keys()];
    if (ids.length === 0 || this.closed) return;
    try {
      const rows = await this.options.inTurn(
        async () =>
          (
            await this.ctx.knex.raw('SELECT id, phase, version FROM ??.migrations WHERE id = ANY(?)', [
              this.ctx.stateSchema,
              ids,
            ])
          ).rows as Array<{ id: string; phase: string; version: string }>,
      );
      const seen = new Set<string>();
      for (const r of rows) {
        seen.add(r.id);
        this.emit({ migrationId: r.id, phase: isPhase(r.phase) ? r.phase : 'unknown', version: Number(r.version) });
      }
      for (const id of ids) if (!seen.has(id)) this.emit({ migrationId: id, phase: 'pending', version: 0 });
      if (this.unreadable) this.ctx.logger.info('phaseflag: state store readable again');
      this.unreadable = false;
    } catch (error) {
      // Unreadable state: said once per failure streak; listeners keep their last known phase (fail safe).
      if (!this.unreadable) {
        this.ctx.logger.warn('phaseflag: state store unreadable; keeping last known phases', {
          error: (error as Error).message,
        });
      }
      this.unreadable = true;
    }
  }

  private async release(conn: PgConnection): Promise<void> {
    await closeDedicated(this.ctx.knex, conn);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.connecting?.catch(() => undefined);
    const conn = this.connection;
    this.connection = undefined;
    if (conn) {
      this.dropped.add(conn); // given back here, not by lost() if it fails meanwhile
      conn.removeAllListeners('notification');
      try {
        await conn.query('UNLISTEN *');
      } catch {
        // the connection is gone already
      }
      await this.release(conn);
    }
  }
}
