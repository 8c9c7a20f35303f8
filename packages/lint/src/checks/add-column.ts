import type { ColumnDef, Constraint, Node } from '@pgsql/types';
import { deparseNode, ident, stringsOf, tableText, typeInfo, walk, type TableRef } from '../ast.js';
import { defineMigrationText } from '../fix.js';
import type { ParsedStatement } from '../parse.js';
import { BLOCKS_ALL, BLOCKS_WRITES, type CheckContext, type RawFinding } from './context.js';

/**
 * Functions a column default may call without forcing a rewrite: immutable or stable ones, which Postgres
 * evaluates once at ALTER time and stores in the catalog (PostgreSQL 11+). Any other function may be volatile
 * (random(), gen_random_uuid(), clock_timestamp(), nextval(), or a function of the application's own).
 */
const NON_VOLATILE = new Set([
  'now',
  'transaction_timestamp',
  'statement_timestamp',
  'current_setting',
  'lower',
  'upper',
  'trim',
  'btrim',
  'ltrim',
  'rtrim',
  'concat',
  'concat_ws',
  'length',
  'abs',
  'round',
  'floor',
  'ceil',
  'date_trunc',
  'make_interval',
  'make_date',
  'make_timestamp',
  'make_timestamptz',
  'to_timestamp',
  'to_date',
  'to_char',
  'to_number',
  'to_jsonb',
  'to_json',
  'jsonb_build_object',
  'json_build_object',
  'jsonb_build_array',
  'json_build_array',
  'array_fill',
  'timezone',
  'md5',
  'replace',
  'substr',
  'substring',
  'left',
  'right',
  'greatest',
  'least',
  'format',
]);
const VOLATILE = new Set([
  'random',
  'gen_random_uuid',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'clock_timestamp',
  'timeofday',
  'nextval',
  'setseed',
  'uuidv7',
]);

const SERIAL = new Set(['serial', 'serial4', 'serial8', 'bigserial', 'smallserial', 'serial2']);
const INT32 = new Set(['int4', 'serial', 'serial4']);

/** The first function the expression calls that may be volatile, if any. */
function volatileCall(expr: Node): string | undefined {
  for (const node of walk(expr)) {
    const call = node.FuncCall as { funcname?: Node[] } | undefined;
    if (!call) continue;
    const name = stringsOf(call.funcname).at(-1) ?? '';
    if (!NON_VOLATILE.has(name)) return name;
  }
  return undefined;
}

const constraintsOf = (def: ColumnDef): Constraint[] =>
  (def.constraints ?? []).flatMap((c) => ('Constraint' in c ? [c.Constraint] : []));

/** prefer-bigint-over-int, for a column of CREATE TABLE or ADD COLUMN. */
export function checkIntColumn(s: ParsedStatement, def: ColumnDef): RawFinding[] {
  const type = def.typeName;
  if (!type) return [];
  const base = stringsOf(type.names).at(-1) ?? '';
  if (!INT32.has(base) || (type.arrayBounds?.length ?? 0) > 0) return [];
  return [
    {
      rule: 'prefer-bigint-over-int',
      index: s.at(type.location),
      message: `Column ${ident(def.colname ?? '')} is a 32-bit integer: it runs out at 2,147,483,647, and widening it later changes its type, which rewrites the table under ACCESS EXCLUSIVE.`,
      safe: `Use bigint${SERIAL.has(base) ? ' (bigserial, or bigint GENERATED ALWAYS AS IDENTITY)' : ''} from the start: the four extra bytes per row cost less than the migration.`,
    },
  ];
}

export function checkAddColumn(s: ParsedStatement, table: TableRef, def: ColumnDef, ctx: CheckContext): RawFinding[] {
  const out: RawFinding[] = [];
  const column = def.colname ?? '';
  const t = tableText(table);
  const at = s.at(def.location);
  const type = def.typeName ? typeInfo(def.typeName) : undefined;
  if (def.typeName) ctx.state.column(table, column, def.typeName);
  const constraints = constraintsOf(def);
  const kind = (k: string) => constraints.find((c) => c.contype === k);
  const dflt = kind('CONSTR_DEFAULT')?.raw_expr;
  const generated = kind('CONSTR_GENERATED');
  const serial = type !== undefined && SERIAL.has(type.base);
  const volatile = dflt ? volatileCall(dflt) : undefined;
  const rewriteWhy = generated
    ? 'a stored generated column is computed for every existing row'
    : kind('CONSTR_IDENTITY')
      ? 'an identity column is numbered for every existing row'
      : serial
        ? "a serial column's default nextval() is volatile, so every existing row is written"
        : dflt && volatile !== undefined
          ? `its default calls ${volatile}(), which ${VOLATILE.has(volatile) ? 'is volatile' : 'may be volatile (lint cannot see its volatility)'}, so every existing row is written`
          : dflt && ctx.pgVersion < 11 && !('A_Const' in dflt && dflt.A_Const.isnull)
            ? 'before PostgreSQL 11 any default is written into every existing row'
            : undefined;
  if (rewriteWhy) {
    const expr = generated?.raw_expr;
    const source = expr ? firstColumn(expr) : undefined;
    out.push({
      rule: 'adding-field-with-default',
      index: at,
      table,
      hazard: 'rewrite',
      message: `ADD COLUMN ${ident(column)} rewrites ${t} under ACCESS EXCLUSIVE (${rewriteWhy}): ${BLOCKS_ALL} until the rewrite is done.`,
      safe: generated
        ? 'A safer approach: 1. add a plain nullable column; 2. keep it derived for new writes (a trigger); 3. backfill existing rows in batches; 4. enforce NOT NULL with a CHECK … NOT VALID, VALIDATE, SET NOT NULL. phaseflag does these steps as a derived column (fix).'
        : 'A safer approach: 1. add the column without a default (or with a constant one, stored in the catalog from PostgreSQL 11); 2. set the default for new rows (ALTER COLUMN … SET DEFAULT); 3. backfill existing rows in batches.',
      ...(expr && source && type
        ? {
            fix: defineMigrationText({
              what: 'derive',
              table: ctx.qualify(table),
              oldColumn: source,
              intent: 'derive',
              newColumn: { name: column, type: type.text, nullable: true },
              backfill: deparseNode(expr),
            }),
          }
        : {}),
    });
  }
  if (kind('CONSTR_NOTNULL') && !dflt && !generated && !serial && !kind('CONSTR_IDENTITY')) {
    out.push({
      rule: 'adding-required-field',
      index: at,
      table,
      message: `ADD COLUMN ${ident(column)} NOT NULL without a default fails on ${t} as soon as it has a row ("column contains null values"): the migration breaks on every database but an empty one.`,
      safe: 'A safer approach: add it with a constant DEFAULT (no rewrite from PostgreSQL 11), or add it nullable, backfill it in batches, then enforce NOT NULL with CHECK (… IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, SET NOT NULL.',
    });
  }
  if (kind('CONSTR_PRIMARY')) {
    out.push({
      rule: 'adding-serial-primary-key-field',
      index: at,
      table,
      hazard: 'index',
      message: `ADD COLUMN ${ident(column)} … PRIMARY KEY builds the key's unique index on ${t} under ACCESS EXCLUSIVE: ${BLOCKS_ALL} for the whole build.`,
      safe: 'A safer approach: 1. add the column (filled, NOT NULL); 2. CREATE UNIQUE INDEX CONCURRENTLY; 3. ALTER TABLE … ADD CONSTRAINT … PRIMARY KEY USING INDEX (a brief lock).',
    });
  }
  if (kind('CONSTR_UNIQUE')) {
    out.push({
      rule: 'disallowed-unique-constraint',
      index: at,
      table,
      hazard: 'index',
      message: `ADD COLUMN ${ident(column)} … UNIQUE builds a unique index on ${t} under ACCESS EXCLUSIVE: ${BLOCKS_ALL} for the whole build.`,
      safe: 'A safer approach: 1. add the column; 2. CREATE UNIQUE INDEX CONCURRENTLY; 3. ADD CONSTRAINT … UNIQUE USING INDEX (a brief lock).',
    });
  }
  const fk = kind('CONSTR_FOREIGN');
  if (fk) {
    out.push({
      rule: 'adding-foreign-key-constraint',
      index: at,
      table,
      hazard: 'scan',
      message: `ADD COLUMN ${ident(column)} … REFERENCES ${fk.pktable?.relname ?? ''} validates the key over ${t} while holding SHARE ROW EXCLUSIVE on both tables: ${BLOCKS_WRITES}, on the referenced table as well.`,
      safe: 'A safer approach: 1. add the column without REFERENCES; 2. ADD CONSTRAINT … FOREIGN KEY … NOT VALID (brief); 3. VALIDATE CONSTRAINT in another transaction (does not block writes).',
    });
  }
  if (kind('CONSTR_CHECK') && !kind('CONSTR_CHECK')?.skip_validation) {
    out.push({
      rule: 'constraint-missing-not-valid',
      index: at,
      table,
      hazard: 'scan',
      message: `ADD COLUMN ${ident(column)} … CHECK checks every row of ${t} under ACCESS EXCLUSIVE: ${BLOCKS_ALL} during the scan.`,
      safe: 'A safer approach: add the column, then ADD CONSTRAINT … CHECK (…) NOT VALID, then VALIDATE CONSTRAINT in another transaction.',
    });
  }
  return out;
}

/** The first column an expression reads: the source of a derived column. */
function firstColumn(expr: Node): string | undefined {
  for (const node of walk(expr)) {
    const ref = node.ColumnRef as { fields?: Node[] } | undefined;
    if (ref) return stringsOf(ref.fields).at(-1);
  }
  return undefined;
}
