import type { Node, RenameStmt, TransactionStmt, VariableSetStmt } from '@pgsql/types';
import { ident, tableOf, tableText, typeInfo, type TableRef } from '../ast.js';
import { defineMigrationText } from '../fix.js';
import type { ParsedStatement } from '../parse.js';
import type { FileState } from '../state.js';
import { BLOCKS_ALL, type CheckContext, type RawFinding } from './context.js';

export function checkRename(s: ParsedStatement, n: RenameStmt, ctx: CheckContext): RawFinding[] {
  const table = tableOf(n.relation);
  if (!table || !n.newname) return [];
  const t = tableText(table);
  if (n.renameType === 'OBJECT_TABLE') {
    return [
      {
        rule: 'renaming-table',
        index: s.start,
        table,
        message: `RENAME ${t} TO ${ident(n.newname)} breaks every running client that still names ${t}: their queries fail from the moment it commits.`,
        safe: 'A safer approach: 1. create a view under the new name (or the old one, after the rename) so both names work; 2. move the application to the new name and deploy; 3. drop the view.',
      },
    ];
  }
  if (n.renameType !== 'OBJECT_COLUMN' || !n.subname) return [];
  const old = ctx.state.columnType(table, n.subname);
  const type = old ? undefined : ctx.catalogColumn(table, n.subname);
  const typeText = old ? typeInfo(old).text : type?.type.text;
  if (old) ctx.state.column(table, n.newname, old);
  return [
    {
      rule: 'renaming-column',
      index: s.start,
      table,
      message: `RENAME COLUMN ${ident(n.subname)} TO ${ident(n.newname)} breaks every running client that still reads or writes ${t}.${ident(n.subname)}: their queries fail from the moment it commits.`,
      safe: 'A safer approach: 1. add the new column; 2. write both (a trigger keeps them in step) and backfill; 3. move reads to the new name and deploy; 4. drop the old column. phaseflag does these steps (fix).',
      ...(typeText
        ? {
            fix: defineMigrationText({
              what: 'rename',
              table: ctx.qualify(table),
              oldColumn: n.subname,
              newColumn: { name: n.newname, type: typeText, nullable: !(type?.notNull ?? false) },
              backfill: ident(n.subname),
              reverse: ident(n.newname),
            }),
          }
        : {}),
    },
  ];
}

/** BEGIN, COMMIT, ROLLBACK move the transaction state the rules read. */
export function applyTransaction(n: TransactionStmt, state: FileState): void {
  switch (n.kind) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START':
      state.begin();
      break;
    case 'TRANS_STMT_COMMIT':
    case 'TRANS_STMT_ROLLBACK':
    case 'TRANS_STMT_PREPARE':
    case 'TRANS_STMT_COMMIT_PREPARED':
    case 'TRANS_STMT_ROLLBACK_PREPARED':
      state.end();
      break;
    default:
      break;
  }
}

const UTC = new Set(['utc', 'etc/utc', 'uct', 'etc/uct', 'gmt', 'etc/gmt', 'zulu', 'z', 'universal']);

function settingValue(args: Node[] | undefined): string | undefined {
  const first = args?.[0];
  if (!first || !('A_Const' in first)) return undefined;
  const c = first.A_Const;
  if (c.sval) return c.sval.sval;
  if (c.ival) return String(c.ival.ival ?? 0);
  return undefined;
}

/** SET / SET LOCAL / RESET of lock_timeout and TimeZone. */
export function applySet(n: VariableSetStmt, state: FileState): void {
  const name = n.name?.toLowerCase();
  const reset = n.kind === 'VAR_RESET' || n.kind === 'VAR_RESET_ALL' || n.kind === 'VAR_SET_DEFAULT';
  if (n.kind === 'VAR_RESET_ALL') {
    state.lockTimeout = 'none';
    state.utc = false;
    return;
  }
  const value = reset ? undefined : settingValue(n.args);
  if (name === 'lock_timeout') {
    const off = value === undefined || value === '0' || value === '';
    // SET LOCAL outside a transaction block has no effect (Postgres only warns).
    if (off || (n.is_local && !state.inTransaction)) state.lockTimeout = 'none';
    else state.lockTimeout = n.is_local ? 'local' : 'session';
  } else if (name === 'timezone') {
    state.utc = value !== undefined && UTC.has(value.toLowerCase()) && !(n.is_local && !state.inTransaction);
  }
}

/** The table a statement takes a lock on that blocks reads or writes while it waits, if any. */
export function blockingLockTarget(node: Node): { table: TableRef | undefined; what: string } | undefined {
  if ('AlterTableStmt' in node) {
    const n = node.AlterTableStmt;
    const cmds = (n.cmds ?? []).flatMap((c) => ('AlterTableCmd' in c ? [c.AlterTableCmd.subtype] : []));
    if (cmds.length > 0 && cmds.every((c) => c === 'AT_ValidateConstraint')) return undefined;
    return { table: tableOf(n.relation), what: 'ALTER TABLE takes ACCESS EXCLUSIVE' };
  }
  if ('IndexStmt' in node && !node.IndexStmt.concurrent)
    return { table: tableOf(node.IndexStmt.relation), what: 'CREATE INDEX takes SHARE' };
  if (
    'DropStmt' in node &&
    !node.DropStmt.concurrent &&
    ['OBJECT_INDEX', 'OBJECT_TABLE'].includes(node.DropStmt.removeType ?? '')
  )
    return { table: undefined, what: 'DROP takes ACCESS EXCLUSIVE' };
  if ('RenameStmt' in node) return { table: tableOf(node.RenameStmt.relation), what: 'RENAME takes ACCESS EXCLUSIVE' };
  if ('CreateTrigStmt' in node)
    return { table: tableOf(node.CreateTrigStmt.relation), what: 'CREATE TRIGGER takes SHARE ROW EXCLUSIVE' };
  if ('TruncateStmt' in node) return { table: undefined, what: 'TRUNCATE takes ACCESS EXCLUSIVE' };
  if ('ClusterStmt' in node)
    return { table: tableOf(node.ClusterStmt.relation), what: 'CLUSTER takes ACCESS EXCLUSIVE' };
  if ('LockStmt' in node) return { table: undefined, what: 'LOCK TABLE takes its lock' };
  if ('VacuumStmt' in node && node.VacuumStmt.is_vacuumcmd) {
    const full = (node.VacuumStmt.options ?? []).some((o) => 'DefElem' in o && o.DefElem.defname === 'full');
    if (full) return { table: undefined, what: 'VACUUM FULL takes ACCESS EXCLUSIVE' };
  }
  if ('ReindexStmt' in node) {
    const concurrent = (node.ReindexStmt.params ?? []).some(
      (p) => 'DefElem' in p && p.DefElem.defname === 'concurrently',
    );
    if (!concurrent)
      return {
        table: tableOf(node.ReindexStmt.relation),
        what: 'REINDEX takes SHARE (and ACCESS EXCLUSIVE on each index)',
      };
  }
  return undefined;
}

export function lockTimeoutFinding(s: ParsedStatement, what: string, table: TableRef | undefined): RawFinding {
  const on = table ? ` on ${tableText(table)}` : '';
  return {
    rule: 'require-lock-timeout',
    index: s.start,
    ...(table ? { table } : {}),
    message: `${what}${on} with no lock_timeout set: while it waits behind any long-running transaction, ${BLOCKS_ALL} — the wait itself is the outage.`,
    safe: "Put SET lock_timeout = '2s' (or SET LOCAL inside the transaction) before it, and retry the migration when it times out; phaseflag runs every DDL statement that way.",
  };
}
