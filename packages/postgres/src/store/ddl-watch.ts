import { objectName, quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ExecutorContext } from '../context.js';
import { DDL_WATCH_DROP_FUNCTION, DDL_WATCH_FUNCTION } from './ddl-watch-sql.js';

/** The state schema version that brought the DDL watch (its table and functions). */
export const DDL_WATCH_VERSION = 6;

/** Whether DDL on the migrations' tables is being recorded as it happens, and why not when it is not. */
export interface DdlWatchStatus {
  readonly active: boolean;
  /** Why DDL is not being watched (null when it is), with what to do about it. */
  readonly reason: string | null;
}

/** A DDL statement phaseflag did not run, on the table of a migration in flight, as the event trigger recorded it. */
export interface RecordedDdl {
  readonly id: number;
  readonly at: Date;
  /** Who ran it: the role set with SET ROLE, else the session's login role. */
  readonly role: string;
  /** e.g. `ALTER TABLE`, `DROP INDEX`. */
  readonly commandTag: string;
  readonly objectType: string | null;
  /** e.g. `public.orders`, `orders_amount_idx on public.orders`. */
  readonly objectIdentity: string | null;
  readonly tableSchema: string;
  readonly tableName: string;
  /** The statement as sent (the whole query string, cut to 4000 characters). */
  readonly statement: string | null;
  readonly acknowledgedAt: Date | null;
  readonly acknowledgedBy: string | null;
}

/** The two event triggers of a state schema; names are per database, so they carry the schema's name. */
export function ddlWatchTriggerNames(stateSchema: string): { ddl: string; drop: string } {
  return { ddl: objectName('pf_ddl_watch', stateSchema), drop: objectName('pf_ddl_drop', stateSchema) };
}

type Db = Knex | Knex.Transaction;

async function readWatch(db: Db, s: string): Promise<{ superuser: boolean; enabled: boolean[]; functions: boolean }> {
  const row = (
    await db.raw(
      `SELECT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser,
              to_regprocedure(?) IS NOT NULL AS functions,
              coalesce((SELECT array_agg(e.evtenabled <> 'D') FROM pg_catalog.pg_event_trigger e
                         WHERE e.evtfoid IN (to_regprocedure(?), to_regprocedure(?))), '{}') AS enabled`,
      [fn(s, DDL_WATCH_FUNCTION), fn(s, DDL_WATCH_FUNCTION), fn(s, DDL_WATCH_DROP_FUNCTION)],
    )
  ).rows[0] as { superuser: boolean | null; functions: boolean; enabled: boolean[] };
  return { superuser: row.superuser === true, enabled: row.enabled, functions: row.functions };
}

function fn(s: string, name: string): string {
  return `${quoteIdent(s)}.${quoteIdent(name)}()`;
}

/**
 * Creates the state schema's event triggers when they are missing and the role may (event triggers need a
 * superuser); otherwise leaves everything as it is, and `ddlWatchStatus` says why. Idempotent; one catalog read
 * when there is nothing to do.
 */
export async function ensureDdlWatch(ctx: ExecutorContext): Promise<void> {
  const s = ctx.stateSchema;
  const w = await readWatch(ctx.knex, s);
  if (!w.functions || !w.superuser || w.enabled.length === 2) return;
  const names = ddlWatchTriggerNames(s);
  await ctx.knex.transaction(async (trx) => {
    await trx.raw(`SELECT set_config('lock_timeout', '5s', true)`);
    for (const [name, event, f] of [
      [names.ddl, 'ddl_command_end', DDL_WATCH_FUNCTION],
      [names.drop, 'sql_drop', DDL_WATCH_DROP_FUNCTION],
    ] as const) {
      const exists = (await trx.raw('SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = ?', [name])).rows.length;
      if (exists === 0)
        await trx.raw(`CREATE EVENT TRIGGER ${quoteIdent(name)} ON ${event} EXECUTE FUNCTION ${fn(s, f)}`);
    }
  });
}

export async function ddlWatchStatus(ctx: ExecutorContext, version: number): Promise<DdlWatchStatus> {
  if (version < DDL_WATCH_VERSION)
    return {
      active: false,
      reason: `the state store is at version ${version}; the DDL watch comes with version ${DDL_WATCH_VERSION}: upgrade it (\`phaseflag install\`)`,
    };
  const w = await readWatch(ctx.knex, ctx.stateSchema);
  if (w.enabled.length === 2 && w.enabled.every(Boolean)) return { active: true, reason: null };
  if (w.enabled.length > 0) {
    const names = ddlWatchTriggerNames(ctx.stateSchema);
    return {
      active: false,
      reason: `an event trigger of the DDL watch is missing or disabled: as a superuser, \`ALTER EVENT TRIGGER ${quoteIdent(names.ddl)} ENABLE; ALTER EVENT TRIGGER ${quoteIdent(names.drop)} ENABLE;\`, or run \`phaseflag install\` as a superuser`,
    };
  }
  return {
    active: false,
    reason:
      'no event trigger: Postgres lets only a superuser create one; run `phaseflag install` once as a superuser (DDL on the tables is still compared with the catalog, only not recorded as it happens)',
  };
}

/** Recorded DDL on these tables, oldest first; with `all`, acknowledged entries too. */
export async function readRecordedDdl(
  db: Db,
  s: string,
  tables: readonly { schema: string; name: string }[],
  options: { all?: boolean } = {},
): Promise<RecordedDdl[]> {
  if (tables.length === 0) return [];
  const rows = (
    await db.raw(
      `SELECT id, at, role, command_tag AS "commandTag", object_type AS "objectType", object_identity AS "objectIdentity",
              table_schema AS "tableSchema", table_name AS "tableName", statement,
              acknowledged_at AS "acknowledgedAt", acknowledged_by AS "acknowledgedBy"
         FROM ??.ddl_log
        WHERE (table_schema, table_name) IN (SELECT * FROM unnest(?::text[], ?::text[]))
          AND (? OR acknowledged_at IS NULL)
        ORDER BY id LIMIT 1000`,
      [s, tables.map((t) => t.schema), tables.map((t) => t.name), options.all === true],
    )
  ).rows as RecordedDdl[];
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/** Marks the recorded DDL on these tables as seen; returns how many entries were acknowledged. */
export async function acknowledgeDdl(
  db: Db,
  s: string,
  tables: readonly { schema: string; name: string }[],
  by: string,
): Promise<number> {
  if (tables.length === 0) return 0;
  const result = await db.raw(
    `UPDATE ??.ddl_log SET acknowledged_at = clock_timestamp(), acknowledged_by = ?
      WHERE acknowledged_at IS NULL AND (table_schema, table_name) IN (SELECT * FROM unnest(?::text[], ?::text[]))`,
    [s, by, tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return (result as { rowCount: number }).rowCount;
}
