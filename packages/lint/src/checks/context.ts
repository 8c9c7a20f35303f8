import type { TableRef, TypeInfo } from '../ast.js';
import type { FileState } from '../state.js';

/** What makes a finding size-dependent, and how its lock hold time is estimated from the table's size. */
export type Hazard = 'rewrite' | 'scan' | 'index';

/** A finding as a check reports it, before ignore comments, exclusions and the catalog have their say. */
export interface RawFinding {
  rule: string;
  /** String index in the statement's text source where the finding points. */
  index: number;
  message: string;
  safe: string;
  fix?: string;
  /** The table it is about: no finding when this file created it (nobody else uses it yet). */
  table?: TableRef;
  /** Size-dependent: no finding on a small table; on a large one the message gets its size and hold time. */
  hazard?: Hazard;
}

export interface CheckContext {
  state: FileState;
  pgVersion: number;
  /** The column's type from the catalog, when one was given and knows the table. */
  catalogColumn(table: TableRef, column: string): { type: TypeInfo; notNull: boolean } | undefined;
  /** The table's CHECK constraint of this name, when a catalog was given and lists the table's checks. */
  catalogCheck(table: TableRef, name: string): { validated: boolean; notNullColumn?: string } | undefined;
  /** The catalog shows a validated `CHECK (column IS NOT NULL)` on the table. */
  catalogNotNullProven(table: TableRef, column: string): boolean;
  /** The table with the schema the catalog found it in (as written when there is no catalog): what a fix names. */
  qualify(table: TableRef): TableRef;
}

export const BLOCKS_ALL = 'every read and write of the table waits behind it';
export const BLOCKS_WRITES = 'every INSERT, UPDATE and DELETE on the table waits behind it (reads go on)';
