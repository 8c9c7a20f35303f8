import { metrics, trace, type Meter, type MeterProvider, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { systemClock, silentLogger, validateIdentifier, TRACER_NAME, type Clock, type Logger } from '@phaseflag/core';
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
}

export interface ExecutorContextOptions {
  knex: Knex;
  stateSchema?: string;
  tracerProvider?: TracerProvider;
  meterProvider?: MeterProvider;
  logger?: Logger;
  clock?: Clock;
  actor?: string;
}

export const DEFAULT_STATE_SCHEMA = 'phaseflag';

export function createContext(options: ExecutorContextOptions): ExecutorContext {
  const stateSchema = validateIdentifier(options.stateSchema ?? DEFAULT_STATE_SCHEMA, 'state schema');
  return {
    knex: options.knex,
    stateSchema,
    tracer: (options.tracerProvider ?? trace.getTracerProvider()).getTracer(TRACER_NAME),
    meter: (options.meterProvider ?? metrics.getMeterProvider()).getMeter(TRACER_NAME),
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? systemClock,
    actor: options.actor ?? `${process.env.HOSTNAME ?? 'host'}:${process.pid}`,
  };
}
