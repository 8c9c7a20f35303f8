/**
 * Throwaway database roles for the privilege suites: random names, LOGIN (the test server trusts local logins, so
 * a connection string with the role's name connects as it), dropped with everything they own after the suite.
 * Roles are cluster-wide: every suite cleans up its own in an after hook.
 */
import { randomBytes } from 'node:crypto';
import type { Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';

export interface Roles {
  /** `pf_<kind>_<random>` for each kind asked for. */
  readonly names: Record<string, string>;
  /** The database URL, connecting as `role`. */
  url(role: string): string;
  /** Drops every role (their objects reassigned to the caller, their grants revoked). Idempotent. */
  drop(): Promise<void>;
}

export async function createRoles(
  knex: Knex,
  databaseUrl: string,
  kinds: readonly string[],
  options: { nologin?: readonly string[] } = {},
): Promise<Roles> {
  const suffix = randomBytes(4).toString('hex');
  const names = Object.fromEntries(kinds.map((k) => [k, `pf_${k}_${suffix}`]));
  const created: string[] = [];
  for (const k of kinds) {
    await knex.raw(`CREATE ROLE ?? ${options.nologin?.includes(k) ? 'NOLOGIN' : 'LOGIN'}`, [names[k]!]);
    created.push(names[k]!);
  }
  let dropped: Promise<void> | undefined;
  return {
    names,
    url: (role) => {
      const u = new URL(databaseUrl);
      u.username = role;
      u.password = '';
      return u.toString();
    },
    drop: () =>
      (dropped ??= (async () => {
        for (const r of created) {
          await knex.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ?', [r]);
          await knex.raw('REASSIGN OWNED BY ?? TO CURRENT_USER', [r]);
          await knex.raw('DROP OWNED BY ??', [r]);
        }
        for (const r of created) await knex.raw('DROP ROLE IF EXISTS ??', [r]);
      })()),
  };
}

/** The catalog of both schemas and every row of the state store: what a read-only command must leave as it found it. */
export async function snapshot(suite: Suite): Promise<unknown> {
  const catalog = await suite.knex.raw(
    `SELECT n.nspname, c.relname, c.relkind, (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int AS cols
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN (?, ?) ORDER BY 1, 2`,
    [suite.schema, suite.stateSchema],
  );
  const rows: Record<string, unknown> = {};
  for (const t of ['schema_version', 'migrations', 'events', 'backfill_ranges', 'underivable', 'ddl_log'])
    rows[t] = (
      await suite.knex.raw('SELECT to_jsonb(t) AS r FROM ??.?? AS t ORDER BY to_jsonb(t)::text', [suite.stateSchema, t])
    ).rows;
  const triggers = await suite.knex.raw(
    `SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ? AND NOT tgisinternal ORDER BY 1`,
    [suite.schema],
  );
  return { catalog: catalog.rows, rows, triggers: triggers.rows };
}
