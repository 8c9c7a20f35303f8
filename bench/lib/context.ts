import { Phaseflag } from '@phaseflag/postgres';
import type { Knex } from 'knex';
import type { BenchDatabase } from './db.js';

/** What every case gets from the orchestrator. */
export interface BenchContext {
  readonly db: BenchDatabase;
  /** The orchestrator's own pool: DDL, stats, checkpoints. */
  readonly admin: Knex;
  /** One engine for the run; state in schema "phaseflag" of the bench database. */
  readonly pf: Phaseflag;
  readonly stateSchema: string;
  readonly quick: boolean;
  /** Table sizes, smallest first. */
  readonly sizes: readonly number[];
  /** Parallel backfill workers. */
  readonly workers: number;
  log(message: string): void;
  /** A fresh schema name for one measured run. */
  schemaFor(label: string): string;
}

export function makeEngine(knex: Knex, stateSchema: string): Phaseflag {
  return new Phaseflag({ knex, stateSchema, pollIntervalMs: 250, graceMs: 0 });
}
