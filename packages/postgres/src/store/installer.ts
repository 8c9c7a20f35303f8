import { StateError } from '@phaseflag/core';
import type { ExecutorContext } from '../context.js';
import { LATEST_SCHEMA_VERSION, SCHEMA_VERSIONS } from './schema.js';
import { advisoryKey } from '../driver/advisory.js';
import { ensureDdlWatch } from './ddl-watch.js';
import { assertSessionConnection } from '../driver/pooler.js';

/** Where the state store stands in this database, read without a lock, a write or any privilege on its tables. */
export interface StateStoreInfo {
  readonly schema: string;
  /** Its version table exists. */
  readonly installed: boolean;
  /** The version installed (0 when not installed). */
  readonly version: number;
  /** The version this phaseflag installs and reads. */
  readonly latest: number;
}

export async function readStateStoreInfo(ctx: ExecutorContext): Promise<StateStoreInfo> {
  const s = ctx.stateSchema;
  const found = await ctx.knex.raw<{ rows: unknown[] }>(
    `SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ? AND c.relname = 'schema_version'`,
    [s],
  );
  if (found.rows.length === 0) return { schema: s, installed: false, version: 0, latest: LATEST_SCHEMA_VERSION };
  const row = (await ctx.knex.raw('SELECT coalesce(max(version), 0) AS v FROM ??.schema_version', [s])).rows[0] as {
    v: number;
  };
  return { schema: s, installed: true, version: Number(row.v), latest: LATEST_SCHEMA_VERSION };
}

/**
 * For the read-only paths (status, history): the store must be there and at least at the version this code reads;
 * a newer one is read as it is (versions only ever add). Nothing is installed or upgraded here.
 */
export async function assertStateStoreReadable(ctx: ExecutorContext): Promise<StateStoreInfo> {
  const info = await readStateStoreInfo(ctx);
  if (!info.installed) {
    throw new StateError(
      'PF_STATE_NOT_INSTALLED',
      `The state store is not installed: no schema "${info.schema}" with phaseflag's tables.`,
      {
        value: info.schema,
        hint: 'Install it as a role that may create it (`phaseflag install`, or any command that changes a migration), or point --state-schema / PHASEFLAG_STATE_SCHEMA at the schema that holds it.',
      },
    );
  }
  if (info.version < info.latest) {
    throw new StateError(
      'PF_STATE_SCHEMA_OUTDATED',
      `State schema "${info.schema}" is at version ${info.version}; this phaseflag reads version ${info.latest}.`,
      {
        value: info.version,
        hint: 'Upgrade it as the role that owns it (`phaseflag install`); reading it as it is could show wrong facts.',
      },
    );
  }
  return info;
}

function tooNew(s: string, from: number): StateError {
  return new StateError(
    'PF_STATE_SCHEMA_TOO_NEW',
    `State schema "${s}" is at version ${from}; this phaseflag knows up to ${LATEST_SCHEMA_VERSION}.`,
    {
      value: from,
      hint: 'Upgrade @phaseflag/postgres in this service to the version that installed the store.',
    },
  );
}

/**
 * Creates or upgrades the state store. Idempotent: a second call finds the latest version and does nothing.
 * A database at a newer version than this code knows is refused rather than guessed at.
 */
export async function installStateStore(ctx: ExecutorContext): Promise<{ from: number; to: number }> {
  const s = ctx.stateSchema;
  // A store at the latest version is left alone, without DDL or a lock: a role with no right to create anything
  // (a service's) may call install() at start-up.
  const current = await readStateStoreInfo(ctx);
  if (current.version > LATEST_SCHEMA_VERSION) throw tooNew(s, current.version);
  if (current.version === LATEST_SCHEMA_VERSION) {
    if (ctx.watchDdl) await ensureDdlWatch(ctx);
    return { from: current.version, to: LATEST_SCHEMA_VERSION };
  }
  // The install alone would get through a transaction pooler; what the operator does next would not, so it is told
  // here, before the first change, rather than halfway through a migration.
  await assertSessionConnection(ctx.knex, 'install the state store');
  const installed = await ctx.knex.transaction(async (trx) => {
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
    if (from > LATEST_SCHEMA_VERSION) throw tooNew(s, from);
    for (const v of SCHEMA_VERSIONS) {
      if (v.version <= from) continue;
      await v.up(trx, s);
      await trx.raw('INSERT INTO ??.schema_version (version) VALUES (?)', [s, v.version]);
    }
    return { from, to: LATEST_SCHEMA_VERSION };
  });
  // Where the role may create event triggers (a superuser); elsewhere drift and status say DDL is not watched.
  if (ctx.watchDdl) await ensureDdlWatch(ctx);
  return installed;
}
