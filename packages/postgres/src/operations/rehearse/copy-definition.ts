import { CatalogError, quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import { qualify } from '../../sql/text.js';

/** A table named with its schema (resolved: rehearse asks the source for its current schema first). */
export interface TableRef {
  readonly schema: string;
  readonly name: string;
}

/** One statement that rebuilds part of a table on the copy, in the order it must run. */
export interface CopyStatement {
  readonly what: string;
  readonly sql: string;
  /** `before-rows` (schema, types, table, keys) or `after-rows` (indexes, checks, foreign keys, triggers: built once, faster). */
  readonly when: 'before-rows' | 'after-rows';
}

/** A table the target's foreign keys reference: its definition is copied, and the rows the copied ones point at. */
export interface ParentTable {
  readonly table: TableRef;
  readonly constraint: string;
  /** The referencing columns on the target and the referenced ones on the parent, in order. */
  readonly childColumns: readonly string[];
  readonly parentColumns: readonly string[];
  /** `format_type` of each referenced column, for the key list sent back to the source. */
  readonly parentTypes: readonly string[];
}

export interface TableDefinition {
  readonly table: TableRef;
  readonly statements: readonly CopyStatement[];
  /** What could not be recreated, and why (the rehearsal runs without it; the report lists it). */
  readonly skipped: readonly { what: string; why: string }[];
  readonly parents: readonly ParentTable[];
  /** Columns rows are inserted into (generated ones are left out: the copy computes them). */
  readonly insertColumns: readonly string[];
  /** Columns whose default draws on a sequence (serial, identity): set past the copied maximum after loading. */
  readonly sequenceColumns: readonly string[];
  /** The primary key's columns ([] without one). */
  readonly primaryKey: readonly string[];
  /** Unique constraints and unique indexes other than the primary key (they forbid scaling rows by copying). */
  readonly otherUniqueKeys: number;
  readonly rowsEstimate: number;
  readonly totalBytes: number;
}

interface ColumnRow {
  name: string;
  type: string;
  notnull: boolean;
  default: string | null;
  identity: string;
  generated: string;
  typtype: string;
  type_schema: string;
  type_name: string;
  enum_labels: string[] | null;
}

/**
 * Reads, in one READ ONLY transaction, what it takes to rebuild `table` elsewhere: columns, types (enums are
 * recreated), defaults, keys, constraints, indexes and triggers (with their PL/pgSQL or SQL functions), and the
 * tables its foreign keys reference (their columns and keys only). search_path is pg_catalog inside the
 * transaction, so every name Postgres prints back (`pg_get_indexdef`, `pg_get_constraintdef`, defaults) is
 * schema-qualified and the statements mean the same on a database with other search_path settings.
 */
export async function describeTableDefinition(knex: Knex, table: TableRef): Promise<TableDefinition> {
  return knex.transaction(
    async (trx) => {
      await trx.raw("SELECT set_config('search_path', 'pg_catalog', true)");
      const main = await describeOne(trx, table, { withExtras: true });
      const parents: ParentTable[] = [];
      const statements = [...main.statements];
      const skipped = [...main.skipped];
      const seen = new Set<string>([`${table.schema}.${table.name}`]);
      for (const fk of main.foreignKeys) {
        parents.push(fk);
        const key = `${fk.table.schema}.${fk.table.name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const parent = await describeOne(trx, fk.table, { withExtras: false });
        // The parent's own table and keys go first; the child's foreign key needs them.
        statements.unshift(...parent.statements.filter((s) => s.when === 'before-rows'));
        statements.push(...parent.statements.filter((s) => s.when === 'after-rows'));
      }
      const schemas = [...new Set([...seen].map((k) => k.slice(0, k.indexOf('.'))))];
      // Each schema once, first; a schema name from the catalog, quoted.
      const schemaStatements: CopyStatement[] = [table.schema, ...parents.map((p) => p.table.schema)]
        .filter((s, i, all) => all.indexOf(s) === i && schemas.length > 0)
        .map((s) => ({
          what: `schema ${s}`,
          sql: `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(s)}`,
          when: 'before-rows',
        }));
      return { ...main, statements: [...schemaStatements, ...dedupe(statements)], skipped, parents };
    },
    { readOnly: true },
  );
}

function dedupe(statements: CopyStatement[]): CopyStatement[] {
  const seen = new Set<string>();
  return statements.filter((s) => (seen.has(s.sql) ? false : (seen.add(s.sql), true)));
}

async function describeOne(
  trx: Knex.Transaction,
  table: TableRef,
  { withExtras }: { withExtras: boolean },
): Promise<Omit<TableDefinition, 'parents'> & { foreignKeys: ParentTable[] }> {
  const rel = (
    await trx.raw(
      `SELECT c.oid::int AS oid, c.relkind::text AS relkind, greatest(c.reltuples, 0)::float8 AS estimate,
              pg_total_relation_size(c.oid)::float8 AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?`,
      [table.schema, table.name],
    )
  ).rows[0] as { oid: number; relkind: string; estimate: number; bytes: number } | undefined;
  if (!rel || !['r', 'p'].includes(rel.relkind)) {
    throw new CatalogError(
      'PF_UNKNOWN_TABLE',
      `No table ${qualify(table.schema, table.name)} in the source database.`,
      {
        value: `${table.schema}.${table.name}`,
        hint: "Check --database-url (the source) and the migration's table; the role needs USAGE on its schema.",
      },
    );
  }
  if (rel.relkind === 'p' && withExtras) {
    throw new CatalogError(
      'PF_UNKNOWN_TABLE',
      `${qualify(table.schema, table.name)} is partitioned: rehearse copies plain tables only.`,
      {
        value: `${table.schema}.${table.name}`,
        hint: 'Rehearse on a staging copy of the partitioned table with `phaseflag plan` and a run there instead.',
      },
    );
  }
  const columns = (
    await trx.raw(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
              pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity::text AS identity, a.attgenerated::text AS generated,
              t.typtype::text AS typtype, tn.nspname AS type_schema, t.typname AS type_name,
              CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS enum_labels
         FROM pg_attribute a
         JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [rel.oid],
    )
  ).rows as ColumnRow[];
  const statements: CopyStatement[] = [];
  const skipped: { what: string; why: string }[] = [];
  const sequenceColumns: string[] = [];
  for (const c of columns) {
    if (c.typtype === 'e' && c.enum_labels)
      statements.push({
        what: `enum ${c.type_schema}.${c.type_name}`,
        sql: `DO $pf$ BEGIN CREATE TYPE ${qualify(c.type_schema, c.type_name)} AS ENUM (${c.enum_labels.map(literal).join(', ')}); EXCEPTION WHEN duplicate_object THEN NULL; END $pf$`,
        when: 'before-rows',
      });
    const seq = c.default?.match(/^nextval\('(.+)'::regclass\)$/);
    if (seq) {
      statements.push({
        what: `sequence ${seq[1]}`,
        sql: `CREATE SEQUENCE IF NOT EXISTS ${seq[1]!.replace(/''/g, "'")}`,
        when: 'before-rows',
      });
      sequenceColumns.push(c.name);
    }
    if (c.identity) sequenceColumns.push(c.name);
  }
  const columnSql = columns.map((c) => {
    const parts = [quoteIdent(c.name), c.type];
    if (c.generated === 's') parts.push(`GENERATED ALWAYS AS (${c.default}) STORED`);
    else if (c.identity) parts.push(`GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY`);
    else if (c.default !== null) parts.push(`DEFAULT ${c.default}`);
    if (c.notnull) parts.push('NOT NULL');
    return parts.join(' ');
  });
  statements.push({
    what: `table ${table.schema}.${table.name}`,
    sql: `CREATE TABLE IF NOT EXISTS ${qualify(table.schema, table.name)} (${columnSql.join(', ')})`,
    when: 'before-rows',
  });
  const constraints = (
    await trx.raw(
      `SELECT c.conname AS name, c.contype::text AS type, pg_get_constraintdef(c.oid) AS def, c.confrelid::int AS parent,
              pn.nspname AS parent_schema, pc.relname AS parent_name,
              ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS child_columns,
              ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS parent_columns,
              ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(c.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS parent_types
         FROM pg_constraint c LEFT JOIN pg_class pc ON pc.oid = c.confrelid LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE c.conrelid = ? AND c.contype IN ('p', 'u', 'c', 'x', 'f') ORDER BY c.contype = 'f', c.conname`,
      [rel.oid],
    )
  ).rows as {
    name: string;
    type: string;
    def: string;
    parent_schema: string | null;
    parent_name: string | null;
    child_columns: string[];
    parent_columns: string[];
    parent_types: string[];
  }[];
  const foreignKeys: ParentTable[] = [];
  const primaryKey: string[] = [];
  let otherUniqueKeys = 0;
  for (const k of constraints) {
    if (k.type === 'f' && !withExtras) continue;
    if (k.type === 'p') primaryKey.push(...k.child_columns);
    if (k.type === 'u' || k.type === 'x') otherUniqueKeys++;
    const selfReference = k.type === 'f' && k.parent_schema === table.schema && k.parent_name === table.name;
    if (k.type === 'f' && !selfReference)
      foreignKeys.push({
        table: { schema: k.parent_schema!, name: k.parent_name! },
        constraint: k.name,
        childColumns: k.child_columns,
        parentColumns: k.parent_columns,
        parentTypes: k.parent_types,
      });
    // A sample of a self-referencing table points at rows it did not copy: that key checks new rows only.
    const def = selfReference ? `${k.def} NOT VALID` : k.def;
    statements.push({
      what: `${{ p: 'primary key', u: 'unique', c: 'check', x: 'exclusion', f: 'foreign key' }[k.type]} ${k.name}${selfReference ? ' (NOT VALID: self-reference)' : ''}`,
      sql: `ALTER TABLE ${qualify(table.schema, table.name)} ADD CONSTRAINT ${quoteIdent(k.name)} ${def}`,
      when: k.type === 'p' || k.type === 'u' ? 'before-rows' : 'after-rows',
    });
  }
  if (withExtras) {
    const indexes = (
      await trx.raw(
        `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisunique AS unique
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE i.indrelid = ? AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
          ORDER BY c.relname`,
        [rel.oid],
      )
    ).rows as { name: string; def: string; unique: boolean }[];
    for (const i of indexes) {
      if (i.unique) otherUniqueKeys++;
      statements.push({ what: `index ${i.name}`, sql: i.def, when: 'after-rows' });
    }
    const triggers = (
      await trx.raw(
        `SELECT t.tgname AS name, pg_get_triggerdef(t.oid) AS def, l.lanname AS language, pn.nspname AS function_schema,
                CASE WHEN l.lanname IN ('plpgsql', 'sql') THEN pg_get_functiondef(p.oid) END AS function
           FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
          WHERE t.tgrelid = ? AND NOT t.tgisinternal ORDER BY t.tgname`,
        [rel.oid],
      )
    ).rows as { name: string; def: string; language: string; function_schema: string; function: string | null }[];
    for (const t of triggers) {
      if (!t.function) {
        skipped.push({
          what: `trigger ${t.name}`,
          why: `its function is written in ${t.language}, which rehearse does not copy`,
        });
        continue;
      }
      // The function may live in a schema of its own (an audit schema, say): it is created there.
      statements.push({
        what: `schema ${t.function_schema}`,
        sql: `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(t.function_schema)}`,
        when: 'after-rows',
      });
      statements.push({ what: `function of trigger ${t.name}`, sql: t.function, when: 'after-rows' });
      statements.push({ what: `trigger ${t.name}`, sql: t.def, when: 'after-rows' });
    }
  }
  return {
    table,
    statements,
    skipped,
    foreignKeys,
    insertColumns: columns.filter((c) => c.generated !== 's').map((c) => c.name),
    sequenceColumns,
    primaryKey,
    otherUniqueKeys,
    rowsEstimate: rel.estimate,
    totalBytes: rel.bytes,
  };
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
