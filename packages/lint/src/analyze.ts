import type { Node } from '@pgsql/types';
import { ValidationError } from '@phaseflag/core';
import { parseSync } from 'libpg-query';
import { stringsOf, typeInfo, type TableRef } from './ast.js';
import { findTable, isSmall, sizeNote } from './catalog.js';
import { checkAlterTable } from './checks/alter-table.js';
import { checkIntColumn } from './checks/add-column.js';
import type { CheckContext, RawFinding } from './checks/context.js';
import { checkCluster, checkCreateIndex, checkDropIndex, checkReindex, checkVacuum } from './checks/maintenance.js';
import {
  applySet,
  applyTransaction,
  blockingLockTarget,
  checkRename,
  lockTimeoutFinding,
} from './checks/statements.js';
import { directives } from './ignore.js';
import { lineColumn, parseSql, type ParsedSql, type ParsedStatement } from './parse.js';
import { checkRuleNames, ruleInfo } from './rules.js';
import { FileState } from './state.js';
import type { Finding, LintOptions } from './types.js';

/** A piece of SQL from one file; `origin` is the line and column every finding in it points at (a knex call). */
export interface Chunk {
  sql: string;
  origin?: { line: number; column: number };
}

export interface Settings {
  pgVersion: number;
  exclude: ReadonlySet<string>;
  options: LintOptions;
}

/** Checks the options once; returns what the analysis reads. */
export function settingsOf(options: LintOptions = {}): Settings {
  checkRuleNames(options.exclude ?? [], 'The option exclude');
  const server = options.catalog?.serverVersionNum;
  const pgVersion = server !== undefined ? Math.floor(server / 10_000) : (options.pgVersion ?? 17);
  if (!Number.isInteger(pgVersion) || pgVersion < 9 || pgVersion > 99) {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `pgVersion ${String(options.pgVersion)} is not a PostgreSQL major version.`,
      {
        value: options.pgVersion,
        hint: 'Give the major version the SQL will run on, e.g. pgVersion: 16.',
      },
    );
  }
  return { pgVersion, exclude: new Set(options.exclude ?? []), options };
}

/** Lints one file's SQL, chunk after chunk, with one state (transactions, created tables) across them. */
export async function lintChunks(
  file: string,
  chunks: readonly Chunk[],
  inTransaction: boolean,
  settings: Settings,
): Promise<{ findings: Finding[]; statements: number }> {
  const parsed: Array<{ chunk: Chunk; sql: ParsedSql }> = [];
  for (const chunk of chunks) parsed.push({ chunk, sql: await parseSql(chunk.sql, file, chunk.origin) });
  const fileIgnores = new Set<string>();
  let fileIgnoresAll = false;
  for (const { chunk, sql } of parsed) {
    const comments = [...sql.statements.flatMap((s) => s.leading), ...sql.trailing];
    for (const d of directives(comments, chunk.sql, file, chunk.origin)) {
      if (d.scope !== 'file') continue;
      if (d.rules.length === 0) fileIgnoresAll = true;
      d.rules.forEach((r) => fileIgnores.add(r));
    }
  }
  const state = new FileState(inTransaction);
  const catalog = settings.options.catalog;
  const ctx: CheckContext = {
    state,
    pgVersion: settings.pgVersion,
    catalogColumn: (table, column) => {
      const c = catalog && findTable(catalog, table)?.columns?.find((x) => x.name === column);
      return c ? { type: typeInfo(typeNameOf(c.type)), notNull: c.notNull ?? false } : undefined;
    },
    catalogCheck: (table, name) =>
      catalog ? findTable(catalog, table)?.checks?.find((c) => c.name === name) : undefined,
    catalogNotNullProven: (table, column) =>
      (catalog && findTable(catalog, table)?.checks?.some((c) => c.validated && c.notNullColumn === column)) ?? false,
    qualify: (table) => {
      const entry = catalog && findTable(catalog, table);
      return entry ? { schema: entry.schema, name: entry.name } : table;
    },
  };
  const findings: Finding[] = [];
  let statements = 0;
  for (const { chunk, sql } of parsed) {
    for (const s of sql.statements) {
      statements++;
      const ignored = new Set<string>();
      let ignoreAll = false;
      for (const d of directives(s.leading, chunk.sql, file, chunk.origin)) {
        if (d.scope !== 'statement') continue;
        if (d.rules.length === 0) ignoreAll = true;
        d.rules.forEach((r) => ignored.add(r));
      }
      for (const raw of check(s, ctx)) {
        if (fileIgnoresAll || ignoreAll || fileIgnores.has(raw.rule) || ignored.has(raw.rule)) continue;
        if (settings.exclude.has(raw.rule)) continue;
        const finding = judge(raw, s, chunk, file, state, settings);
        if (finding) findings.push(finding);
      }
      track(s.node, state);
    }
  }
  return { findings, statements };
}

/** The rules' findings for one statement, before the state moves on. */
function check(s: ParsedStatement, ctx: CheckContext): RawFinding[] {
  const node = s.node;
  const out: RawFinding[] = [];
  if ('IndexStmt' in node) out.push(...checkCreateIndex(s, node.IndexStmt, ctx));
  else if ('DropStmt' in node && node.DropStmt.removeType === 'OBJECT_INDEX')
    out.push(...checkDropIndex(s, node.DropStmt.concurrent ?? false, node.DropStmt.objects ?? [], ctx));
  else if ('ReindexStmt' in node) out.push(...checkReindex(s, node.ReindexStmt, ctx));
  else if ('VacuumStmt' in node) out.push(...checkVacuum(s, node.VacuumStmt));
  else if ('ClusterStmt' in node) out.push(...checkCluster(s, node.ClusterStmt));
  else if ('AlterTableStmt' in node) out.push(...checkAlterTable(s, node.AlterTableStmt, ctx));
  else if ('RenameStmt' in node) out.push(...checkRename(s, node.RenameStmt, ctx));
  else if ('CreateStmt' in node) {
    for (const elt of node.CreateStmt.tableElts ?? [])
      if ('ColumnDef' in elt) out.push(...checkIntColumn(s, elt.ColumnDef));
  }
  const lock = blockingLockTarget(node);
  const ownIndexes =
    'DropStmt' in node &&
    node.DropStmt.removeType === 'OBJECT_INDEX' &&
    (node.DropStmt.objects ?? []).every(
      (o) => 'List' in o && ctx.state.indexCreated(stringsOf(o.List.items).at(-1) ?? ''),
    );
  if (lock && ctx.state.lockTimeout === 'none' && !ownIndexes) out.push(lockTimeoutFinding(s, lock.what, lock.table));
  return out;
}

/** What a statement changes in the file's state once its findings are made. */
function track(node: Node, state: FileState): void {
  if ('TransactionStmt' in node) applyTransaction(node.TransactionStmt, state);
  else if ('VariableSetStmt' in node) applySet(node.VariableSetStmt, state);
  else if ('CreateStmt' in node) {
    const rel = node.CreateStmt.relation;
    if (rel?.relname) {
      const t: TableRef = rel.schemaname ? { schema: rel.schemaname, name: rel.relname } : { name: rel.relname };
      state.createTable(t);
      for (const elt of node.CreateStmt.tableElts ?? [])
        if ('ColumnDef' in elt && elt.ColumnDef.typeName)
          state.column(t, elt.ColumnDef.colname ?? '', elt.ColumnDef.typeName);
    }
  } else if ('CreateTableAsStmt' in node) {
    const rel = node.CreateTableAsStmt.into?.rel;
    if (rel?.relname)
      state.createTable(rel.schemaname ? { schema: rel.schemaname, name: rel.relname } : { name: rel.relname });
  }
}

/** Context no SQL-only linter has: the table was created in this file, or the catalog says it is small. */
function judge(
  raw: RawFinding,
  s: ParsedStatement,
  chunk: Chunk,
  file: string,
  state: FileState,
  settings: Settings,
): Finding | undefined {
  if (raw.table && state.created(raw.table)) return undefined;
  let message = raw.message;
  const catalog = settings.options.catalog;
  const entry = raw.table && catalog ? findTable(catalog, raw.table) : undefined;
  if (entry && raw.hazard) {
    if (isSmall(entry, settings.options.smallTable)) return undefined;
    message = `${message} ${sizeNote(entry, raw.hazard)}`;
  }
  const pos = chunk.origin ?? lineColumn(chunk.sql, raw.index);
  const info = ruleInfo(raw.rule);
  return {
    rule: raw.rule,
    level: info.level,
    file,
    line: pos.line,
    column: pos.column,
    statement: s.text,
    message,
    safe: raw.safe,
    ...(raw.fix ? { fix: raw.fix } : {}),
  };
}

/** A type as the catalog writes it (`character varying(20)`), read by the parser. */
function typeNameOf(text: string) {
  const result = parseSync(`SELECT NULL::${text}`) as { stmts: Array<{ stmt: Node }> };
  const stmt = result.stmts[0]!.stmt;
  const target = 'SelectStmt' in stmt ? stmt.SelectStmt.targetList?.[0] : undefined;
  const val = target && 'ResTarget' in target ? target.ResTarget.val : undefined;
  if (!val || !('TypeCast' in val) || !val.TypeCast.typeName) throw new Error(`not a type: ${text}`);
  return val.TypeCast.typeName;
}
