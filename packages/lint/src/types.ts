/** The public shapes of @phaseflag/lint: what goes in (options, the catalog as plain data) and what comes out. */

export type Level = 'error' | 'warning';

/** One table as the live catalog describes it (from `describeTables` in @phaseflag/postgres, or by hand). */
export interface LintCatalogTable {
  schema: string;
  name: string;
  /** pg_class.reltuples: -1 when the table was never vacuumed or analyzed (then its size alone decides). */
  rowsEstimate: number;
  /** pg_total_relation_size: heap, TOAST and every index, in bytes. */
  totalBytes: number;
  /** Its columns and their types as format_type() writes them (`character varying(20)`), when known. */
  columns?: ReadonlyArray<{ name: string; type: string; notNull?: boolean }>;
  /**
   * Its CHECK constraints, when known: `validated` is false while the check is NOT VALID; `notNullColumn` is the
   * column a check of exactly `CHECK (col IS NOT NULL)` proves (a validated one makes SET NOT NULL skip its scan).
   */
  checks?: ReadonlyArray<{ name: string; validated: boolean; notNullColumn?: string }>;
}

/** What the live database says, as plain data: lint itself never connects. */
export interface LintCatalog {
  /** `server_version_num` (e.g. 150020): decides the version-dependent rules, over `pgVersion`. */
  serverVersionNum?: number;
  /**
   * The schemas an unqualified table name is looked up in first, in order (the connection's `search_path`, as
   * `current_schemas(false)` gives it); a name found on none of them is `public`'s, else the one table of that name.
   */
  searchPath?: readonly string[];
  tables: ReadonlyArray<LintCatalogTable>;
}

/** Below both limits a table is small: a blocking statement on it is over in milliseconds and is not a finding. */
export interface SmallTableLimits {
  /** Default 10 000 rows. */
  maxRows?: number;
  /** Default 10 MB (10 485 760 bytes), indexes and TOAST included. */
  maxBytes?: number;
}

export interface LintOptions {
  /** The file name findings carry (default `<sql>`). */
  file?: string;
  /** The SQL runs inside one transaction (as a knex migration does unless `config = { transaction: false }`). */
  assumeInTransaction?: boolean;
  /** The PostgreSQL major version the SQL will run on (default 17); the catalog's server version wins. */
  pgVersion?: number;
  /** Rule names never reported (an unknown name is `PF_LINT_UNKNOWN_RULE`). */
  exclude?: readonly string[];
  /** The live catalog's tables: sizes turn findings on small tables off and give large ones their hold time. */
  catalog?: LintCatalog;
  /** What counts as a small table when `catalog` is given. */
  smallTable?: SmallTableLimits;
}

export interface Finding {
  rule: string;
  level: Level;
  file: string;
  /** 1-based, of the statement's first token (a knex migration: the line of the call that sent it). */
  line: number;
  /** 1-based. */
  column: number;
  /** The statement's SQL, as written (or as knex would send it). */
  statement: string;
  /** What is dangerous and why: the lock, what it blocks, for how long. */
  message: string;
  /** The safe way, step by step. */
  safe: string;
  /** Where the change is a column change: the `defineMigration({...})` that makes it with phaseflag, ready to paste. */
  fix?: string;
}

export interface LintResult {
  findings: Finding[];
  /** Statements read. */
  statements: number;
  /** Files read (0 for `lintSql`). */
  files: number;
}

export interface RuleInfo {
  name: string;
  level: Level;
  /** The rule name squawk (2.66) reports for the same finding, when squawk has one. */
  squawk?: string;
  summary: string;
}
