import { quoteIdent, ValidationError, type Migration } from '@phaseflag/core';
import type { Knex } from 'knex';

/**
 * The three roles phaseflag is run as, and the least each needs (README "Privileges"):
 * - service: the application embedding the router: its own DML on the tables, and of the state store only what
 *   the router reads (the phase, the store's version) and writes (its heartbeats in `instances`, its shadow
 *   comparisons in `shadow_reads`).
 * - controller: runs the transitions (CLI, `phaseflag run`, a Controller): owns the tables through membership in
 *   their owner role (ADD COLUMN, CREATE INDEX CONCURRENTLY, triggers and DROP COLUMN need the owner), creates the
 *   sync trigger's function in the state schema and writes every state table.
 * - readonly: `phaseflag status` and `history`: SELECT only.
 */
export const GRANT_ROLES = ['service', 'controller', 'readonly'] as const;
export type GrantRole = (typeof GRANT_ROLES)[number];

/** A table a migration changes, as the catalog has it (owner null: not found, e.g. before the table exists). */
export interface GrantTable {
  readonly schema: string | null;
  readonly name: string;
  readonly owner: string | null;
  readonly ownerIsSuperuser: boolean;
  /** A migration on it declares an index: CREATE INDEX needs CREATE on the table's schema too. */
  readonly indexed: boolean;
}

export function isGrantRole(value: unknown): value is GrantRole {
  return typeof value === 'string' && (GRANT_ROLES as readonly string[]).includes(value);
}

/** The GRANT statements (and comments) for `grantee` as `role`; every identifier quoted. Pure: nothing is run. */
export function grantStatements(role: GrantRole, grantee: string, stateSchema: string, tables: GrantTable[]): string[] {
  if (!isGrantRole(role)) {
    throw new ValidationError('PF_INVALID_OPTIONS', `"${String(role)}" is no phaseflag role.`, {
      value: role,
      hint: `Use one of ${GRANT_ROLES.join(', ')}.`,
    });
  }
  if (typeof grantee !== 'string' || grantee.length === 0) {
    throw new ValidationError('PF_INVALID_OPTIONS', 'The role to grant to is empty.', {
      value: grantee,
      hint: 'Name the database role, e.g. "orders_app".',
    });
  }
  const g = quoteIdent(grantee);
  const s = quoteIdent(stateSchema);
  const state = (t: string) => `${s}.${quoteIdent(t)}`;
  const table = (t: GrantTable) => (t.schema ? `${quoteIdent(t.schema)}.${quoteIdent(t.name)}` : quoteIdent(t.name));
  const schemas = [...new Set(tables.map((t) => t.schema).filter((x): x is string => x !== null))];
  const usage = schemas.map((x) => `GRANT USAGE ON SCHEMA ${quoteIdent(x)} TO ${g};`);
  const out = [`-- phaseflag ${role} role for ${g} (state schema ${s})`];
  switch (role) {
    case 'service':
      out.push(
        `GRANT USAGE ON SCHEMA ${s} TO ${g};`,
        `GRANT SELECT ON ${state('schema_version')}, ${state('migrations')} TO ${g};`,
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${state('instances')}, ${state('shadow_reads')} TO ${g};`,
        ...usage,
        ...tables.map((t) => `GRANT SELECT, INSERT, UPDATE, DELETE ON ${table(t)} TO ${g};`),
      );
      break;
    case 'readonly':
      out.push(
        `GRANT USAGE ON SCHEMA ${s} TO ${g};`,
        `GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${g};`,
        ...usage,
        ...tables.map((t) => `GRANT SELECT ON ${table(t)} TO ${g};`),
      );
      break;
    case 'controller': {
      out.push(
        `GRANT USAGE, CREATE ON SCHEMA ${s} TO ${g};`,
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${g};`,
        `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${g};`,
        ...schemas.map((x) =>
          tables.some((t) => t.schema === x && t.indexed)
            ? `GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(x)} TO ${g}; -- CREATE INDEX needs CREATE on the table's schema`
            : `GRANT USAGE ON SCHEMA ${quoteIdent(x)} TO ${g};`,
        ),
      );
      const owners = new Map<string, GrantTable[]>();
      for (const t of tables) {
        if (t.owner === null) {
          out.push(`-- ${table(t)} was not found: grant ${g} membership in its owner role once it exists`);
          continue;
        }
        owners.set(t.owner, [...(owners.get(t.owner) ?? []), t]);
      }
      for (const [owner, owned] of owners) {
        if (owned[0]!.ownerIsSuperuser) {
          out.push(
            `-- ${quoteIdent(owner)} is a superuser: better give ${owned.map(table).join(', ')} a dedicated owner role (ALTER TABLE … OWNER TO it) and grant that`,
          );
        }
        out.push(`GRANT ${quoteIdent(owner)} TO ${g}; -- owner of ${owned.map(table).join(', ')}`);
      }
      out.push(
        `-- replica-lag throttling reads pg_stat_replication's lag columns, hidden from other roles: GRANT pg_monitor TO ${g};`,
      );
      break;
    }
  }
  return out;
}

/** The tables of the given migrations with their owners, as the catalog (through the connection's search_path) has them. */
export async function grantTables(knex: Knex, migrations: readonly Migration[]): Promise<GrantTable[]> {
  const seen = new Map<string, GrantTable>();
  for (const m of migrations) {
    const name = m.table.schema
      ? `${quoteIdent(m.table.schema)}.${quoteIdent(m.table.name)}`
      : quoteIdent(m.table.name);
    const row = (
      await knex.raw(
        `SELECT n.nspname AS schema, c.relname AS name, r.rolname AS owner, r.rolsuper AS super
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_roles r ON r.oid = c.relowner
          WHERE c.oid = to_regclass(?)`,
        [name],
      )
    ).rows[0] as { schema: string; name: string; owner: string; super: boolean } | undefined;
    const key = row ? `${row.schema}.${row.name}` : `${m.table.schema ?? ''}.${m.table.name}`;
    const indexed = m.newColumn.index !== null || seen.get(key)?.indexed === true;
    const t: GrantTable = row
      ? { schema: row.schema, name: row.name, owner: row.owner, ownerIsSuperuser: row.super, indexed }
      : { schema: m.table.schema ?? null, name: m.table.name, owner: null, ownerIsSuperuser: false, indexed };
    seen.set(key, t);
  }
  return [...seen.values()];
}
