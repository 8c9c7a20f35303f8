import { StateError } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { LATEST_SCHEMA_VERSION, SCHEMA_VERSIONS } from './schema.js';
import { advisoryKey } from '../driver/advisory.js';

/**
 * Creates or upgrades the state store. Idempotent: a second call finds the latest version and does nothing.
 * A database at a newer version than this code knows is refused rather than guessed at.
 */
export async function installStateStore(ctx: ExecutorContext): Promise<{ from: number; to: number }> {
  const s = ctx.stateSchema;
  return ctx.knex.transaction(async (trx) => {
    // Transaction-scoped: released at commit, so a crashed installer never leaves it held.
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [advisoryKey('install', s)]);
    await trx.raw('CREATE SCHEMA IF NOT EXISTS ??', [s]);
    await trx.raw(
      'CREATE TABLE IF NOT EXISTS ??.schema_version (version integer NOT NULL, installed_at timestamptz NOT NULL DEFAULT now())',
      [s],
    );
    const row = (await trx.raw('SELECT coalesce(max(version), 0) AS v FROM ??.schema_version', [s])).rows[0] as {
      v: number;
    };
    const from = Number(row.v);
    if (from > LATEST_SCHEMA_VERSION) {
      throw new StateError(
        'PF_STATE_SCHEMA_TOO_NEW',
        `State schema "${s}" is at version ${from}; this phaseflag knows up to ${LATEST_SCHEMA_VERSION}.`,
        {
          value: from,
          hint: 'Upgrade @phaseflag/postgres in this service to the version that installed the store.',
        },
      );
    }
    for (const v of SCHEMA_VERSIONS) {
      if (v.version <= from) continue;
      await v.up(trx, s);
      await trx.raw('INSERT INTO ??.schema_version (version) VALUES (?)', [s, v.version]);
    }
    return { from, to: LATEST_SCHEMA_VERSION };
  });
}
