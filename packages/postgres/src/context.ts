import { metrics, trace, type Meter, type MeterProvider, type Tracer, type TracerProvider } from '@opentelemetry/api';
import {
  systemClock,
  silentLogger,
  validateIdentifier,
  ValidationError,
  TRACER_NAME,
  type Clock,
  type Logger,
} from '@phaseflag/core';
import type { Knex } from 'knex';

/** Everything an executor step needs, passed in rather than reached for (tests pass real Postgres and exporters). */
export interface ExecutorContext {
  readonly knex: Knex;
  /** Schema that holds phaseflag's own tables. */
  readonly stateSchema: string;
  readonly tracer: Tracer;
  readonly meter: Meter;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Who acts (recorded with each transition): a host/pid, a user, "cli". */
  readonly actor: string;
  /** Told while a DDL statement waits for its table lock, with who blocks it (see operations/ddl-lock-wait.ts). */
  readonly onLockWait?: (wait: LockWait) => void;
  /** install() creates the DDL watch's event triggers where the role may (store/ddl-watch.ts). */
  readonly watchDdl: boolean;
}

/** A backend holding (or queued ahead for) the lock a DDL statement waits for, as pg_stat_activity shows it. */
export interface LockBlocker {
  readonly pid: number;
  readonly applicationName: string | null;
  /** active, idle in transaction, … */
  readonly state: string | null;
  readonly xactStart: Date | null;
  readonly queryStart: Date | null;
  /** Its current (or, when idle in transaction, last) statement. */
  readonly query: string | null;
}

/** A DDL statement waiting for its table lock, reported about once a second while the wait lasts. */
export interface LockWait {
  readonly migrationId: string;
  readonly step: string;
  readonly statement: string;
  readonly lockMode: string;
  /** schema.table, when the statement locks one. */
  readonly table: string | null;
  readonly attempt: number;
  readonly maxAttempts: number;
  /**
   * false while phaseflag holds the attempt back without queueing, because a transaction open longer than
   * ddl.longTransactionMs holds a conflicting lock (the application is not stalled; waitedMs is then the time held
   * back so far and may pass lock_timeout); true while the attempt's lock request waits in the queue.
   */
  readonly queued: boolean;
  /** How long this attempt has waited so far, and its lock_timeout (it gives up then and retries). */
  readonly waitedMs: number;
  readonly lockTimeoutMs: number;
  /** Since the statement's first attempt (waits and back-off), and the plan's bound on that (maxDurationMs). */
  readonly elapsedMs: number;
  readonly maxDurationMs: number;
  readonly blockers: readonly LockBlocker[];
}

export interface ExecutorContextOptions {
  knex: Knex;
  stateSchema?: string;
  tracerProvider?: TracerProvider;
  meterProvider?: MeterProvider;
  logger?: Logger;
  clock?: Clock;
  actor?: string;
  /** Told while any DDL statement of this engine waits for its table lock (TransitionOptions.onLockWait too). */
  onLockWait?: (wait: LockWait) => void;
  /**
   * Record DDL that phaseflag did not run on a migration's table as it happens: install() creates two event
   * triggers when the role is a superuser (Postgres allows no one else). Default true, unless the environment
   * says `PHASEFLAG_WATCH_DDL=off` (the test harness does, so that suites sharing a database do not each add one).
   */
  watchDdl?: boolean;
}

export const DEFAULT_STATE_SCHEMA = 'phaseflag';

export function createContext(options: ExecutorContextOptions): ExecutorContext {
  // A knex instance is a function with a client; anything else would fail later, at the first query, untyped.
  if (typeof options?.knex !== 'function' || typeof (options.knex as { client?: unknown }).client !== 'object') {
    throw new ValidationError('PF_INVALID_OPTIONS', 'Phaseflag needs a knex instance as `knex`.', {
      value: typeof options?.knex,
      hint: "Pass the application's knex, e.g. `new Phaseflag({ knex: knex({ client: 'pg', connection }) })`.",
    });
  }
  const stateSchema = stateSchemaName(options.stateSchema ?? DEFAULT_STATE_SCHEMA);
  return {
    knex: options.knex,
    stateSchema,
    tracer: (options.tracerProvider ?? trace.getTracerProvider()).getTracer(TRACER_NAME),
    meter: (options.meterProvider ?? metrics.getMeterProvider()).getMeter(TRACER_NAME),
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? systemClock,
    actor: options.actor ?? `${process.env.HOSTNAME ?? 'host'}:${process.pid}`,
    ...(options.onLockWait ? { onLockWait: options.onLockWait } : {}),
    watchDdl: options.watchDdl ?? process.env.PHASEFLAG_WATCH_DDL !== 'off',
  };
}

/**
 * The state schema is phaseflag's own, named once by the operator, and knex's identifier bindings (`??`), which the
 * state store uses throughout, split a name on "." and read " as " and "?" specially: it stays a plain name.
 */
function stateSchemaName(value: unknown): string {
  const name = validateIdentifier(value, 'state schema');
  if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(name)) {
    throw new ValidationError('PF_INVALID_IDENTIFIER', `Invalid state schema ${JSON.stringify(name)}.`, {
      value: name,
      hint: 'Name phaseflag\'s own schema with letters, digits, _ and $, starting with a letter or _ (default "phaseflag"); the tables you migrate may have any name.',
    });
  }
  return name;
}
