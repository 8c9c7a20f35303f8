import { SpanKind, type Counter, type Histogram, type Meter } from '@opentelemetry/api';
import { ATTR, METRIC, SPAN, type DdlSettings } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { discardOnRelease, withPooledConnection, type PgConnection } from '../driver/connection.js';
import { pgError, SQLSTATE } from '../sql/pg-error.js';
import { qualify } from '../sql/text.js';
import { OWN_DDL_MARK } from '../store/ddl-watch-sql.js';
import { withSpan } from '../telemetry/with-span.js';
import { aborted, ddlFailed, lockTimeout } from './ddl-errors.js';
import { holdBackBehindLongTransactions } from './ddl-hold-back.js';
import { LockWatcher } from './ddl-lock-wait.js';
import {
  backoffStepMs,
  lockTimeoutFor,
  maxLockWait,
  type LockMode,
  type PlannedStatement,
} from './planned-statement.js';

export interface RunDdlOptions {
  migrationId: string;
  ddl: DdlSettings;
  /** Stops retrying; a statement in flight is cancelled (pg_cancel_backend). */
  signal?: AbortSignal;
  /**
   * A statement (node-postgres text with $n parameters) that records the change in the state store, run after the
   * DDL in its transaction, so both commit or neither does. Transactional statements only.
   */
  record?: { text: string; values: unknown[] };
}

export interface DdlOutcome {
  attempts: number;
  /**
   * Time spent waiting for locks: held back behind long transactions, attempts that hit lock_timeout, plus the
   * LOCK TABLE of the one that succeeded.
   */
  lockWaitMs: number;
}

/** The lock modes LOCK TABLE accepts, keyed by our (closed) union: no text from outside reaches the statement. */
const LOCK_TABLE_MODE: Readonly<Record<LockMode, string | null>> = {
  NONE: null,
  'ACCESS SHARE': 'ACCESS SHARE',
  'ROW EXCLUSIVE': 'ROW EXCLUSIVE',
  'SHARE UPDATE EXCLUSIVE': 'SHARE UPDATE EXCLUSIVE',
  SHARE: 'SHARE',
  'SHARE ROW EXCLUSIVE': 'SHARE ROW EXCLUSIVE',
  'ACCESS EXCLUSIVE': 'ACCESS EXCLUSIVE',
};

/**
 * Runs one DDL statement so that it never stalls the application. A lock request waits in a queue, and every
 * later request that conflicts with it queues behind it: an ALTER TABLE waiting behind one long transaction blocks
 * every SELECT that arrives after it. So no attempt starts while a long transaction holds a conflicting lock
 * (ddl-hold-back.ts waits it out without queueing), and each attempt gives up after lock_timeout, lets the queued
 * application queries through, sleeps a jittered, growing interval and tries again, up to maxAttempts. Holding
 * back and queueing share one budget, the plan's maxLockWaitMs (lock_timeout × maxAttempts).
 */
export async function runDdl(ctx: ExecutorContext, stmt: PlannedStatement, opts: RunDdlOptions): Promise<DdlOutcome> {
  const instruments = instrumentsFor(ctx.meter);
  const metricAttrs = { [ATTR.migrationId]: opts.migrationId, [ATTR.lockMode]: stmt.lock };
  return withSpan(
    ctx.tracer,
    SPAN.ddl,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        [ATTR.migrationId]: opts.migrationId,
        [ATTR.statement]: stmt.sql,
        [ATTR.lockMode]: stmt.lock,
        [ATTR.dbSystem]: 'postgresql',
        ...(stmt.table ? { [ATTR.table]: `${stmt.table.schema}.${stmt.table.name}` } : {}),
      },
    },
    async (span) => {
      let attempts = 0;
      let lockWaitMs = 0;
      const watcher = new LockWatcher(ctx, stmt, opts, span);
      const budgetMs = maxLockWait(stmt.lock, opts.ddl);
      try {
        for (;;) {
          if (opts.signal?.aborted) throw aborted(opts.signal, stmt, opts, attempts);
          const held = await holdBackBehindLongTransactions(
            ctx,
            stmt,
            opts.ddl,
            watcher,
            attempts + 1,
            budgetMs - lockWaitMs,
            opts.signal,
          );
          lockWaitMs += held.waitedMs;
          if (opts.signal?.aborted) throw aborted(opts.signal, stmt, opts, attempts);
          if (held.exhausted) throw await lockTimeout(ctx, stmt, opts, attempts, undefined, held.waitedMs);
          attempts++;
          const started = ctx.clock.now();
          try {
            const watch = (pid: number | null) => watcher.watch(pid, attempts);
            lockWaitMs += await (stmt.transactional ? runInTransaction : runOnSession)(ctx, stmt, opts, watch);
            return { attempts, lockWaitMs };
          } catch (e) {
            const pg = pgError(e);
            const lockTrouble = pg.code === SQLSTATE.lockNotAvailable || pg.code === SQLSTATE.deadlockDetected;
            if (opts.signal?.aborted && (lockTrouble || pg.code === SQLSTATE.queryCanceled)) {
              throw aborted(opts.signal, stmt, opts, lockTrouble ? attempts : attempts - 1, e);
            }
            if (!lockTrouble) throw ddlFailed(stmt, opts, pg, e);
            lockWaitMs += ctx.clock.now() - started;
            span.addEvent('lock_timeout', { attempt: attempts, sqlstate: pg.code ?? '' });
            if (attempts >= opts.ddl.maxAttempts) throw await lockTimeout(ctx, stmt, opts, attempts, e);
            instruments.retries.add(1, metricAttrs);
            ctx.logger.debug('ddl lock timeout, retrying', {
              migrationId: opts.migrationId,
              step: stmt.step,
              attempt: attempts,
            });
            await ctx.clock.sleep(backoffMs(attempts, opts.ddl), opts.signal);
          }
        }
      } finally {
        await watcher.close();
        span.setAttribute(ATTR.attempts, attempts);
        span.setAttribute(ATTR.lockWaitMs, lockWaitMs);
        instruments.lockWait.record(lockWaitMs, metricAttrs);
      }
    },
  );
}

/** Equal jitter: half the exponential step is kept, so retries spread out yet still back off. */
export function backoffMs(
  attempt: number,
  ddl: Pick<DdlSettings, 'retryBaseMs' | 'retryMaxMs'>,
  random = Math.random,
): number {
  const step = backoffStepMs(attempt, ddl);
  return Math.round(step / 2 + random() * (step / 2));
}

function timeouts(stmt: PlannedStatement, opts: RunDdlOptions): [string, string] {
  return [`${lockTimeoutFor(stmt.lock, opts.ddl)}ms`, `${opts.ddl.statementTimeoutMs}ms`];
}

/** Starts watching an attempt's backend for lock waits; the function returned stops it. */
type Watch = (pid: number | null) => () => Promise<void>;

async function runInTransaction(
  ctx: ExecutorContext,
  stmt: PlannedStatement,
  opts: RunDdlOptions,
  watch: Watch,
): Promise<number> {
  return withConnection(ctx, opts, watch, async (conn) => {
    let lockWait = 0;
    await conn.query('BEGIN');
    try {
      // SET LOCAL: the settings end with the transaction, whatever happens to it.
      // OWN_DDL_MARK marks the transaction as phaseflag's own for the DDL watch (store/ddl-watch-sql.ts).
      await conn.query(
        "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true), set_config($3, $4, true)",
        [...timeouts(stmt, opts), OWN_DDL_MARK.name, OWN_DDL_MARK.value],
      );
      const mode = LOCK_TABLE_MODE[stmt.lock];
      if (stmt.table && mode !== null) {
        const t0 = ctx.clock.now();
        await conn.query(`LOCK TABLE ${qualify(stmt.table.schema, stmt.table.name)} IN ${mode} MODE`);
        lockWait = ctx.clock.now() - t0;
      }
      await conn.query(stmt.sql);
      if (opts.record) await conn.query(opts.record.text, opts.record.values);
      await conn.query('COMMIT');
    } catch (e) {
      await conn.query('ROLLBACK').catch((rollbackError) => discardOnRelease(conn, String(rollbackError)));
      throw e;
    }
    return lockWait;
  });
}

async function runOnSession(
  ctx: ExecutorContext,
  stmt: PlannedStatement,
  opts: RunDdlOptions,
  watch: Watch,
): Promise<number> {
  if (opts.record)
    throw new Error(`phaseflag: ${stmt.step} runs outside a transaction and cannot record its change atomically`);
  return withConnection(ctx, opts, watch, async (conn) => {
    await conn.query(
      "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false), set_config($3, $4, false)",
      [...timeouts(stmt, opts), OWN_DDL_MARK.name, OWN_DDL_MARK.value],
    );
    try {
      await conn.query(stmt.sql);
    } finally {
      // The connection returns to a pool the application may share: it must not keep our timeouts.
      await conn
        .query('RESET lock_timeout')
        .then(() => conn.query('RESET statement_timeout'))
        .then(() => conn.query(`RESET ${OWN_DDL_MARK.name}`))
        .catch((resetError) => discardOnRelease(conn, String(resetError)));
    }
    return 0;
  });
}

/** One pooled connection for the whole attempt, watched for lock waits; an abort cancels whatever it runs. */
async function withConnection<T>(
  ctx: ExecutorContext,
  opts: RunDdlOptions,
  watch: Watch,
  work: (conn: PgConnection) => Promise<T>,
): Promise<T> {
  return withPooledConnection(ctx.knex, async (conn) => {
    const cancel = (): void => {
      if (conn.processID !== null) {
        ctx.knex
          .raw('SELECT pg_cancel_backend(?)', [conn.processID])
          .catch((e) => ctx.logger.warn('could not cancel DDL', { error: String(e) }));
      }
    };
    opts.signal?.addEventListener('abort', cancel, { once: true });
    const unwatch = watch(conn.processID);
    try {
      return await work(conn);
    } finally {
      await unwatch();
      opts.signal?.removeEventListener('abort', cancel);
    }
  });
}

const INSTRUMENTS = new WeakMap<Meter, { lockWait: Histogram; retries: Counter }>();

function instrumentsFor(meter: Meter): { lockWait: Histogram; retries: Counter } {
  let found = INSTRUMENTS.get(meter);
  if (!found) {
    found = {
      lockWait: meter.createHistogram(METRIC.lockWait, {
        unit: 'ms',
        description: 'Time DDL statements waited for their table lock.',
      }),
      retries: meter.createCounter(METRIC.ddlRetries, { description: 'DDL attempts retried after lock_timeout.' }),
    };
    INSTRUMENTS.set(meter, found);
  }
  return found;
}
