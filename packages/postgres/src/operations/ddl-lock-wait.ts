import type { Span } from '@opentelemetry/api';
import { ATTR, type DdlSettings } from '@phaseflag/core';
import type { ExecutorContext, LockBlocker, LockWait } from '../context.js';
import { closeDedicated, openDedicated, type PgConnection } from '../driver/connection.js';
import { lockTimeoutFor, type PlannedStatement } from './planned-statement.js';

/** The first look at who blocks an attempt, then one a second while it still waits. */
const FIRST_CHECK_MS = 250;
const CHECK_EVERY_MS = 1000;

const BLOCKERS_SQL = `
  SELECT a.pid, a.application_name, a.state, a.xact_start, a.query_start, a.query
    FROM pg_stat_activity a
   WHERE a.pid = ANY (pg_blocking_pids($1::int))
   ORDER BY a.xact_start NULLS LAST, a.pid`;

/**
 * Watches the attempts of one DDL statement: while an attempt waits for a lock, says who holds it (pid,
 * application, transaction and query start, statement) as a `lock_wait` span event, a log line and
 * `ctx.onLockWait`, so an operator sees at once which session to finish instead of a silent wait. The look runs
 * on a connection of its own outside the pool (the attempt may hold the pool's only one), opened at the first
 * look and closed with the watcher.
 */
export class LockWatcher {
  private conn: PgConnection | null = null;
  private running: Promise<void> = Promise.resolve();
  private readonly startedAt: number;

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly stmt: PlannedStatement,
    private readonly opts: { readonly migrationId: string; readonly ddl: DdlSettings },
    private readonly span: Span,
  ) {
    this.startedAt = ctx.clock.now();
  }

  /** Watches the attempt running on backend `pid` until the function returned is called (and awaited). */
  watch(pid: number | null, attempt: number): () => Promise<void> {
    if (pid === null || this.stmt.lock === 'NONE') return () => Promise.resolve();
    const attemptStart = this.ctx.clock.now();
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      this.running = this.running
        .then(() => (stopped ? undefined : this.look(pid, attempt, attemptStart)))
        .catch((error: unknown) =>
          this.ctx.logger.debug('phaseflag: could not look up who blocks a DDL statement', { error: String(error) }),
        )
        .then(() => {
          if (!stopped) timer = setTimeout(tick, CHECK_EVERY_MS).unref();
        });
    };
    timer = setTimeout(tick, FIRST_CHECK_MS).unref();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await this.running;
    };
  }

  async close(): Promise<void> {
    await this.running;
    const conn = this.conn;
    this.conn = null;
    if (conn) await closeDedicated(this.ctx.knex, conn).catch(() => undefined);
  }

  /** Runs a look-up on the watcher's own connection, never in the DDL's transaction nor on the pool. */
  async query(text: string, values: unknown[]): Promise<Record<string, unknown>[]> {
    this.conn ??= await openDedicated(this.ctx.knex);
    return (await this.conn.query(text, values)).rows;
  }

  private async look(pid: number, attempt: number, attemptStart: number): Promise<void> {
    const blockers = (await this.query(BLOCKERS_SQL, [pid])).map(toBlocker);
    if (blockers.length > 0) this.report(blockers, attempt, this.ctx.clock.now() - attemptStart, true);
  }

  /**
   * Says who keeps the statement from its lock: a `lock_wait` span event, a log line and `ctx.onLockWait`.
   * `queued` false: the attempt is held back without queueing (ddl-hold-back.ts), `waitedMs` the time held back.
   */
  report(blockers: readonly LockBlocker[], attempt: number, waitedMs: number, queued: boolean): void {
    const first = blockers[0];
    if (!first) return;
    const now = this.ctx.clock.now();
    const { stmt, opts } = this;
    const wait: LockWait = {
      migrationId: opts.migrationId,
      step: stmt.step,
      statement: stmt.sql,
      lockMode: stmt.lock,
      table: stmt.table ? `${stmt.table.schema}.${stmt.table.name}` : null,
      attempt,
      maxAttempts: opts.ddl.maxAttempts,
      queued,
      waitedMs,
      lockTimeoutMs: lockTimeoutFor(stmt.lock, opts.ddl),
      elapsedMs: now - this.startedAt,
      maxDurationMs: stmt.maxDurationMs,
      blockers,
    };
    this.span.addEvent('lock_wait', {
      [ATTR.attempts]: attempt,
      'phaseflag.lock_wait.queued': queued,
      'phaseflag.lock_wait.waited_ms': wait.waitedMs,
      'phaseflag.lock_wait.blocker_pids': blockers.map((b) => b.pid).join(' '),
      'phaseflag.lock_wait.blocker_application': first.applicationName ?? '',
      'phaseflag.lock_wait.blocker_state': first.state ?? '',
      'phaseflag.lock_wait.blocker_xact_start': first.xactStart?.toISOString() ?? '',
      'phaseflag.lock_wait.blocker_query': (first.query ?? '').slice(0, 500),
    });
    const how = queued ? 'waits for' : 'holds back, without queueing, from';
    this.ctx.logger.info(
      `phaseflag: ${opts.migrationId}: ${stmt.step} ${how} ${stmt.lock} on ${wait.table ?? '?'} (attempt ${attempt}/${wait.maxAttempts}, ${wait.waitedMs} ms): blocked by pid ${blockers.map((b) => b.pid).join(', ')}`,
      {
        migrationId: opts.migrationId,
        step: stmt.step,
        attempt,
        queued,
        waitedMs: wait.waitedMs,
        blockers: blockers.map((b) => b.pid),
      },
    );
    try {
      this.ctx.onLockWait?.(wait);
    } catch (error) {
      this.ctx.logger.error(`phaseflag: onLockWait threw: ${(error as Error)?.message ?? error}`, {
        migrationId: opts.migrationId,
      });
    }
  }
}

/** A pg_stat_activity row (pid, application_name, state, xact_start, query_start, query) as a LockBlocker. */
export function toBlocker(r: Record<string, unknown>): LockBlocker {
  return {
    pid: Number(r.pid),
    applicationName: (r.application_name as string | null) || null,
    state: (r.state as string | null) ?? null,
    xactStart: (r.xact_start as Date | null) ?? null,
    queryStart: (r.query_start as Date | null) ?? null,
    query: (r.query as string | null) ?? null,
  };
}
