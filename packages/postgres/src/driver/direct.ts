import { redactUrl, ValidationError } from '@phaseflag/core';
import knexFactory, { type Knex } from 'knex';

/** The options that name the operator side's direct connection (see PhaseflagOptions). */
export interface DirectOptions {
  knex: Knex;
  directUrl?: string;
  direct?: Knex;
}

/** The pool of a knex built from `directUrl`: no connection while idle; one per backfill worker when busy. */
export const DIRECT_POOL = { min: 0, max: 5 } as const;

/**
 * The knex the operator side runs on: `direct` as given, one built from `directUrl` (`owned`: the Phaseflag
 * destroys it in close()), or none (the operator side shares `knex`). Built with the application knex's
 * `searchPath`, so that both sides resolve an unqualified table name alike.
 */
export function directKnex(options: DirectOptions): { knex: Knex; owned: boolean } | undefined {
  const { directUrl, direct } = options;
  if (directUrl !== undefined && direct !== undefined) {
    throw new ValidationError('PF_INVALID_OPTIONS', 'Both `directUrl` and `direct` were given.', {
      value: { directUrl: typeof directUrl === 'string' ? redactUrl(directUrl) : directUrl, direct: typeof direct },
      hint: 'Give one: `directUrl` (phaseflag builds and closes a small knex for it) or `direct` (your own knex).',
    });
  }
  if (direct !== undefined) {
    if (typeof direct !== 'function' || typeof (direct as { client?: unknown }).client !== 'object') {
      throw new ValidationError('PF_INVALID_OPTIONS', 'Phaseflag needs a knex instance as `direct`.', {
        value: typeof direct,
        hint: "Pass a knex connected to the database's own address, e.g. `direct: knex({ client: 'pg', connection: process.env.DIRECT_URL })`, or give `directUrl`.",
      });
    }
    return { knex: direct, owned: false };
  }
  if (directUrl === undefined) return undefined;
  if (typeof directUrl !== 'string' || directUrl.trim() === '') {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `Invalid directUrl ${JSON.stringify(directUrl) ?? String(directUrl)}.`,
      {
        value: directUrl,
        hint: "Give the database's own address as a connection string, e.g. postgres://user:pass@db-host:5432/app.",
      },
    );
  }
  const searchPath = (options.knex.client as { config?: { searchPath?: unknown } }).config?.searchPath;
  const knex = knexFactory({
    client: 'pg',
    connection: directUrl,
    pool: { ...DIRECT_POOL },
    ...(typeof searchPath === 'string' || Array.isArray(searchPath) ? { searchPath: searchPath as string[] } : {}),
  });
  return { knex, owned: true };
}
