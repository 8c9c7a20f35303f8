/**
 * Throwaway database roles for the privilege suites: random names, LOGIN (the test server trusts local logins, so
 * a connection string with the role's name connects as it), dropped with everything they own after the suite.
 * Roles are cluster-wide: every suite cleans up its own in an after hook.
 */
import { randomBytes } from 'node:crypto';
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
