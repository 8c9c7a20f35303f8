import type { TypeName } from '@pgsql/types';
import { sameTable, type TableRef } from './ast.js';

/**
 * What the statements read so far in one file have done, as the rules need it: whether a transaction is open,
 * whether lock_timeout is set, which tables, indexes and columns the file itself created, which constraints it
 * added NOT VALID (and in which transaction), which NOT NULL checks it validated (or which constraints of earlier
 * migrations).
 */
export class FileState {
  inTransaction: boolean;
  /** Counts transactions, so that two statements can be told apart as "same transaction" or not. */
  transaction = 0;
  lockTimeout: 'none' | 'session' | 'local' = 'none';
  /** The session's TimeZone is UTC (SET TIME ZONE 'UTC' seen): timestamp ↔ timestamptz does not rewrite then. */
  utc = false;
  private readonly tables: TableRef[] = [];
  private readonly indexes = new Set<string>();
  private readonly columns = new Map<string, { table: TableRef; type: TypeName }>();
  private readonly notValid = new Map<string, { table: TableRef; transaction: number; notNullOf?: string }>();
  private readonly provenNotNull: Array<{ table: TableRef; column: string }> = [];
  /** Tables a constraint this file did not add was validated on: what it checks is not known here. */
  private readonly validatedElsewhere: TableRef[] = [];

  constructor(readonly implicitTransaction: boolean) {
    this.inTransaction = implicitTransaction;
    if (implicitTransaction) this.transaction = 1;
  }

  begin(): void {
    this.inTransaction = true;
    this.transaction++;
  }

  end(): void {
    this.inTransaction = false;
    if (this.lockTimeout === 'local') this.lockTimeout = 'none';
  }

  createTable(t: TableRef): void {
    this.tables.push(t);
  }

  /** The table was created earlier in this file: nobody else can hold a lock on it or have rows in it yet. */
  created(t: TableRef | undefined): boolean {
    return t !== undefined && this.tables.some((c) => sameTable(c, t));
  }

  createIndex(name: string): void {
    this.indexes.add(name);
  }

  indexCreated(name: string): boolean {
    return this.indexes.has(name);
  }

  column(t: TableRef, column: string, type: TypeName): void {
    this.columns.set(`${t.name}\u0000${column}`, { table: t, type });
  }

  columnType(t: TableRef, column: string): TypeName | undefined {
    const c = this.columns.get(`${t.name}\u0000${column}`);
    return c && sameTable(c.table, t) ? c.type : undefined;
  }

  addNotValid(name: string, table: TableRef, notNullOf?: string): void {
    this.notValid.set(name, { table, transaction: this.inTransaction ? this.transaction : -1, notNullOf });
  }

  /** The constraint was added NOT VALID by this file in the transaction still open. */
  notValidInThisTransaction(name: string): boolean {
    const c = this.notValid.get(name);
    return c !== undefined && this.inTransaction && c.transaction === this.transaction;
  }

  /** VALIDATE CONSTRAINT: false when this file did not add the constraint (an earlier migration did). */
  validated(name: string): boolean {
    const c = this.notValid.get(name);
    if (c?.notNullOf) this.provenNotNull.push({ table: c.table, column: c.notNullOf });
    return c !== undefined;
  }

  /**
   * A constraint added NOT VALID by an earlier migration was validated on the table, and nothing here says what it
   * checks: taken, as the safe way's step 2, to be the `CHECK (col IS NOT NULL)` a later SET NOT NULL relies on.
   */
  validatedUnknown(table: TableRef): void {
    this.validatedElsewhere.push(table);
  }

  proveNotNull(table: TableRef, column: string): void {
    this.provenNotNull.push({ table, column });
  }

  /** A validated CHECK (column IS NOT NULL) exists: SET NOT NULL needs no scan (PostgreSQL 12+). */
  notNullProven(table: TableRef, column: string): boolean {
    return (
      this.provenNotNull.some((p) => p.column === column && sameTable(p.table, table)) ||
      this.validatedElsewhere.some((t) => sameTable(t, table))
    );
  }
}
