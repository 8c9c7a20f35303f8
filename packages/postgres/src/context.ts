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
  const stateSchema = stateSchemaName(options.stateSchema ?? DEFAULT_STATE_SCHEMA);
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
