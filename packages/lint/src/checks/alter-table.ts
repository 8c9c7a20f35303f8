import type { AlterTableCmd, AlterTableStmt, Constraint, Node } from '@pgsql/types';
import { deparseNode, ident, stringsOf, tableOf, tableText, typeInfo, type TableRef, type TypeInfo } from '../ast.js';
import { defineMigrationText } from '../fix.js';
import type { ParsedStatement } from '../parse.js';
import { checkAddColumn, checkIntColumn } from './add-column.js';
import { rewriteOf } from './column-type.js';
import { BLOCKS_ALL, BLOCKS_WRITES, type CheckContext, type RawFinding } from './context.js';

const NEW_COLUMN_STEPS =
  'A safer approach: 1. add a new column of the new type; 2. write both columns (a trigger keeps them in step); 3. backfill existing rows in batches; 4. switch reads; 5. drop the old column. phaseflag does these steps, each behind a flag (fix).';

export function checkAlterTable(s: ParsedStatement, n: AlterTableStmt, ctx: CheckContext): RawFinding[] {
  const table = tableOf(n.relation);
  if (!table || (n.objtype !== undefined && n.objtype !== 'OBJECT_TABLE')) return [];
  return (n.cmds ?? []).flatMap((c) => ('AlterTableCmd' in c ? checkCommand(s, table, c.AlterTableCmd, ctx) : []));
}

function checkCommand(s: ParsedStatement, table: TableRef, cmd: AlterTableCmd, ctx: CheckContext): RawFinding[] {
  const t = tableText(table);
  const column = cmd.name ?? '';
  const def = cmd.def;
  switch (cmd.subtype) {
    case 'AT_AddColumn':
      if (!def || !('ColumnDef' in def)) return [];
      return [...checkAddColumn(s, table, def.ColumnDef, ctx), ...checkIntColumn(s, def.ColumnDef)];
    case 'AT_AlterColumnType':
      return def && 'ColumnDef' in def
        ? checkType(s, table, column, def.ColumnDef.typeName, def.ColumnDef.raw_default, ctx)
        : [];
    case 'AT_SetNotNull':
      return checkSetNotNull(s, table, column, ctx);
    case 'AT_DropNotNull':
      return [
        {
          rule: 'ban-drop-not-null',
          index: s.start,
          table,
          message: `DROP NOT NULL on ${t}.${ident(column)} lets NULLs in that running clients (and the code that reads them) do not expect.`,
          safe: 'Change the readers first so that they handle NULL, deploy them, then drop the constraint.',
        },
      ];
    case 'AT_DropColumn':
      return [
        {
          rule: 'ban-drop-column',
          index: s.start,
          table,
          message: `DROP COLUMN ${ident(column)} breaks every running client that still selects or writes ${t}.${ident(column)}, and takes ACCESS EXCLUSIVE while it waits.`,
          safe: "A safer approach: 1. stop reading and writing the column in the application and deploy that; 2. then drop it (phaseflag's contract with dropOldColumn does it once reads have moved).",
        },
      ];
    case 'AT_AddConstraint':
      return def && 'Constraint' in def ? checkConstraint(s, table, def.Constraint, ctx) : [];
    case 'AT_ValidateConstraint':
      return checkValidate(s, table, column, ctx);
    default:
      return [];
  }
}

function knownType(table: TableRef, column: string, ctx: CheckContext) {
  const fromFile = ctx.state.columnType(table, column);
  if (fromFile) return { type: typeInfo(fromFile), notNull: false };
  return ctx.catalogColumn(table, column);
}

function checkType(
  s: ParsedStatement,
  table: TableRef,
  column: string,
  typeName: Parameters<typeof typeInfo>[0] | undefined,
  using: Node | undefined,
  ctx: CheckContext,
): RawFinding[] {
  if (!typeName) return [];
  const to = typeInfo(typeName);
  // `USING (col::T)`, T the target type, is the conversion ALTER … TYPE makes without USING (knex's .alter() writes it).
  if (using && plainCast(using, column, to)) using = undefined;
  const old = knownType(table, column, ctx);
  ctx.state.column(table, column, typeName);
  const verdict = old && !using ? rewriteOf(old.type, to, ctx.pgVersion) : 'rewrite';
  if (verdict === 'none' || (verdict === 'utc-only' && ctx.state.utc)) return [];
  const t = tableText(table);
  const from = old ? ` from ${old.type.text}` : '';
  const why =
    verdict === 'utc-only'
      ? ` (${old!.type.text} → ${to.text} is a catalog change only when the session's TimeZone is UTC; no SET TIME ZONE 'UTC' comes before it, so lint cannot assume it)`
      : !old
        ? ` (lint cannot see the column's current type: no catalog was given and no earlier statement creates it; varchar → text, varchar(n) → varchar(m > n), numeric(p,s) → numeric(q > p,s) and cidr → inet do not rewrite)`
        : using
          ? ' (a USING expression recomputes every row)'
          : '';
  return [
    {
      rule: 'changing-column-type',
      index: s.start,
      table,
      hazard: 'rewrite',
      message: `ALTER COLUMN ${ident(column)} TYPE ${to.text}${from} rewrites ${t} and rebuilds its indexes under ACCESS EXCLUSIVE${why}: ${BLOCKS_ALL} until it is done.`,
      safe: NEW_COLUMN_STEPS,
      fix: defineMigrationText({
        what: 'type',
        table: ctx.qualify(table),
        oldColumn: column,
        newColumn: { name: `${column}_new`, type: to.text, nullable: !(old?.notNull ?? false) },
        backfill: using ? deparseNode(using) : `${ident(column)}::${to.text}`,
        ...(old ? { reverse: `${ident(`${column}_new`)}::${old.type.text}` } : {}),
      }),
    },
  ];
}

function plainCast(using: Node, column: string, to: TypeInfo): boolean {
  if (!('TypeCast' in using)) return false;
  const { arg, typeName } = using.TypeCast;
  if (!arg || !typeName || !('ColumnRef' in arg)) return false;
  const fields = stringsOf(arg.ColumnRef.fields);
  const cast = typeInfo(typeName);
  return (
    fields.length === 1 &&
    fields[0] === column &&
    cast.base === to.base &&
    cast.array === to.array &&
    cast.mods.join() === to.mods.join()
  );
}

function checkSetNotNull(s: ParsedStatement, table: TableRef, column: string, ctx: CheckContext): RawFinding[] {
  if (ctx.pgVersion >= 12 && (ctx.state.notNullProven(table, column) || ctx.catalogNotNullProven(table, column)))
    return [];
  const t = tableText(table);
  const old = knownType(table, column, ctx);
  return [
    {
      rule: 'adding-not-nullable-field',
      index: s.start,
      table,
      hazard: 'scan',
      message: `SET NOT NULL on ${t}.${ident(column)} scans every row to prove it under ACCESS EXCLUSIVE: ${BLOCKS_ALL} during the scan.`,
      safe: `A safer approach (PostgreSQL 12+): 1. ADD CONSTRAINT ${ident(`${column}_not_null`)} CHECK (${ident(column)} IS NOT NULL) NOT VALID; 2. VALIDATE CONSTRAINT in another transaction (does not block writes); 3. SET NOT NULL (no scan: the check proves it); 4. drop the check. phaseflag's contract does exactly this for a new column (fix).`,
      ...(old
        ? {
            fix: defineMigrationText({
              what: 'not-null',
              table: ctx.qualify(table),
              oldColumn: column,
              newColumn: { name: `${column}_not_null`, type: old.type.text, nullable: false },
              backfill: ident(column),
              reverse: ident(`${column}_not_null`),
            }),
          }
        : {}),
    },
  ];
}

/** `CHECK (col IS NOT NULL)`: the column it proves non-null. */
function notNullColumn(expr: Node | undefined): string | undefined {
  if (!expr || !('NullTest' in expr) || expr.NullTest.nulltesttype !== 'IS_NOT_NULL') return undefined;
  const arg = expr.NullTest.arg;
  return arg && 'ColumnRef' in arg ? stringsOf(arg.ColumnRef.fields).at(-1) : undefined;
}

function checkConstraint(s: ParsedStatement, table: TableRef, c: Constraint, ctx: CheckContext): RawFinding[] {
  const t = tableText(table);
  const name = c.conname ?? '';
  switch (c.contype) {
    case 'CONSTR_CHECK': {
      const nn = notNullColumn(c.raw_expr);
      if (c.skip_validation) {
        ctx.state.addNotValid(name, table, nn);
        return [];
      }
      if (nn) ctx.state.proveNotNull(table, nn);
      return [
        {
          rule: 'constraint-missing-not-valid',
          index: s.start,
          table,
          hazard: 'scan',
          message: `ADD CONSTRAINT ${ident(name)} CHECK without NOT VALID checks every row of ${t} under ACCESS EXCLUSIVE: ${BLOCKS_ALL} during the scan.`,
          safe: `A safer approach: 1. ADD CONSTRAINT … CHECK (…) NOT VALID (a brief lock; new writes are checked from then on); 2. ALTER TABLE ${t} VALIDATE CONSTRAINT ${ident(name || '…')} in another transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on).`,
        },
      ];
    }
    case 'CONSTR_FOREIGN':
      if (c.skip_validation) {
        ctx.state.addNotValid(name, table);
        return [];
      }
      return [
        {
          rule: 'adding-foreign-key-constraint',
          index: s.start,
          table,
          hazard: 'scan',
          message: `ADD FOREIGN KEY without NOT VALID checks every row of ${t} against ${c.pktable?.relname ?? 'the referenced table'} while holding SHARE ROW EXCLUSIVE on both: ${BLOCKS_WRITES}, and on the referenced table as well.`,
          safe: `A safer approach: 1. ADD CONSTRAINT … FOREIGN KEY … NOT VALID (a brief lock); 2. ALTER TABLE ${t} VALIDATE CONSTRAINT ${ident(name || '…')} in another transaction (does not block writes).`,
        },
      ];
    case 'CONSTR_UNIQUE':
    case 'CONSTR_PRIMARY': {
      if (c.indexname) return [];
      const primary = c.contype === 'CONSTR_PRIMARY';
      return [
        {
          rule: primary ? 'adding-serial-primary-key-field' : 'disallowed-unique-constraint',
          index: s.start,
          table,
          hazard: 'index',
          message: `ADD ${primary ? 'PRIMARY KEY' : 'UNIQUE'} builds its unique index on ${t} under ACCESS EXCLUSIVE: ${BLOCKS_ALL} for the whole build.`,
          safe: `A safer approach: 1. CREATE UNIQUE INDEX CONCURRENTLY ${ident(name || 'the_index')} ON ${t} (…); 2. ALTER TABLE ${t} ADD CONSTRAINT ${ident(name || 'the_constraint')} ${primary ? 'PRIMARY KEY' : 'UNIQUE'} USING INDEX ${ident(name || 'the_index')} (a brief lock).`,
        },
      ];
    }
    default:
      return [];
  }
}

function checkValidate(s: ParsedStatement, table: TableRef, name: string, ctx: CheckContext): RawFinding[] {
  const same = ctx.state.notValidInThisTransaction(name);
  if (!ctx.state.validated(name)) {
    // Added NOT VALID by an earlier migration: the catalog, when it lists the check, says what it proves.
    const known = ctx.catalogCheck(table, name);
    if (!known) ctx.state.validatedUnknown(table);
    else if (known.notNullColumn) ctx.state.proveNotNull(table, known.notNullColumn);
  }
  if (!same) return [];
  return [
    {
      rule: 'validate-in-same-transaction',
      index: s.start,
      table,
      hazard: 'scan',
      message: `VALIDATE CONSTRAINT ${ident(name)} runs in the transaction that added it NOT VALID, which still holds that statement's ACCESS EXCLUSIVE lock on ${tableText(table)}: ${BLOCKS_ALL} for the whole validation scan, as if NOT VALID had not been written.`,
      safe: 'Commit after ADD CONSTRAINT … NOT VALID and validate in a transaction of its own (a separate migration, or `config = { transaction: false }` with each statement on its own).',
    },
  ];
}
