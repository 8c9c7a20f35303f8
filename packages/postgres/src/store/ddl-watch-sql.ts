import { quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';

/**
 * The DDL watch's table and functions (state schema version 6). Frozen like the version that creates them: a later
 * change to what the watch records is a new version that replaces the functions.
 *
 * DDL that phaseflag did not run, on the table of a migration in flight, is recorded as it happens (pgroll records
 * such statements as "inferred" migrations) by two event triggers that call these functions:
 * - `pf_ddl_watch` on `ddl_command_end`: CREATE and ALTER (a column's type, a trigger disabled, an index built, a
 *   constraint added); each command's object is traced to its table through pg_index, pg_trigger, pg_constraint and
 *   pg_attrdef;
 * - `pf_ddl_watch_drop` on `sql_drop`: DROP INDEX, DROP TRIGGER, DROP TABLE (a column or constraint dropped by ALTER
 *   TABLE is already an ALTER TABLE above). A dropped index is gone from the catalog, so it is matched by the name
 *   the migration declares.
 *
 * What they must never do, and how:
 * - fail anyone's DDL: the work runs in an exception block that turns every error into a WARNING;
 * - cost much on unrelated DDL: phaseflag's own DDL (OWN_DDL_MARK, set by operations/ddl.ts and by the SQL files
 *   `phaseflag generate` writes) returns at the first line; other DDL does one indexed lookup per command (temporary objects none);
 * - need privileges of the role running the DDL: SECURITY DEFINER (the state store's owner writes the row) with a
 *   pinned search_path, so a caller's path cannot redirect a name; the role recorded is the caller's (SET ROLE's
 *   role, else the session user; current_user would name the owner);
 * - outlive the state schema: an event trigger depends on its function, so DROP SCHEMA … CASCADE of the state
 *   schema drops the functions and the event triggers with them.
 */
export const DDL_WATCH_FUNCTION = 'pf_ddl_watch';
export const DDL_WATCH_DROP_FUNCTION = 'pf_ddl_watch_drop';

/**
 * The setting that marks DDL as phaseflag's own: while it is `on`, the watch records nothing. The engine sets it
 * transaction-local around each statement (operations/ddl.ts; on the session, then RESET, for CONCURRENTLY), and
 * the SQL files `phaseflag generate` writes do the same (operations/generate-sql.ts). Part of the frozen functions
 * below: a new name or value is a new state schema version.
 */
export const OWN_DDL_MARK = { name: 'phaseflag.ddl', value: 'on' } as const;
const IS_OWN_DDL = `current_setting('${OWN_DDL_MARK.name}', true) = '${OWN_DDL_MARK.value}'`;

/** Migrations whose table is watched: in flight (a contracted or rolled-back migration's table is the team's again). */
const IN_FLIGHT = `m.phase NOT IN ('contracted', 'rolled-back')`;
const CALLER = `CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END`;

export async function createDdlWatchObjects(trx: Knex.Transaction, s: string): Promise<void> {
  const q = quoteIdent(s);
  await trx.raw(
    `CREATE TABLE ??.ddl_log (
      id bigserial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT clock_timestamp(),
      role text NOT NULL,
      command_tag text NOT NULL,
      object_type text,
      object_identity text,
      table_schema text NOT NULL,
      table_name text NOT NULL,
      statement text,
      acknowledged_at timestamptz,
      acknowledged_by text
    )`,
    [s],
  );
  await trx.raw('CREATE INDEX ON ??.ddl_log (table_schema, table_name, id) WHERE acknowledged_at IS NULL', [s]);
  await trx.raw(
    `CREATE FUNCTION ??.${DDL_WATCH_FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
     SET search_path = pg_catalog, pg_temp AS $pf$
     DECLARE
       c record;
       rel oid;
     BEGIN
       IF ${IS_OWN_DDL} THEN RETURN; END IF;
       BEGIN
         FOR c IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
           CONTINUE WHEN c.in_extension OR c.schema_name IS NULL OR c.schema_name LIKE 'pg\\_temp\\_%';
           rel := CASE c.classid
             WHEN 'pg_class'::regclass THEN coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.objid), c.objid)
             WHEN 'pg_trigger'::regclass THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = c.objid)
             WHEN 'pg_constraint'::regclass THEN (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = c.objid)
             WHEN 'pg_attrdef'::regclass THEN (SELECT d.adrelid FROM pg_attrdef d WHERE d.oid = c.objid)
           END;
           CONTINUE WHEN rel IS NULL;
           INSERT INTO ${q}.ddl_log (role, command_tag, object_type, object_identity, table_schema, table_name, statement)
           SELECT ${CALLER}, c.command_tag, c.object_type, c.object_identity, n.nspname, t.relname, left(current_query(), 4000)
             FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE t.oid = rel
              AND EXISTS (SELECT FROM ${q}.migrations m
                           WHERE m.table_schema = n.nspname AND m.table_name = t.relname AND ${IN_FLIGHT});
         END LOOP;
       EXCEPTION WHEN others THEN
         RAISE WARNING 'phaseflag: the DDL watch of state schema % could not record a statement: %', ${literal(s)}, SQLERRM;
       END;
     END
     $pf$`,
    [s],
  );
  await trx.raw(
    `CREATE FUNCTION ??.${DDL_WATCH_DROP_FUNCTION}() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
     SET search_path = pg_catalog, pg_temp AS $pf$
     DECLARE
       d record;
       tname text;
     BEGIN
       IF ${IS_OWN_DDL} OR tg_tag = 'ALTER TABLE' THEN RETURN; END IF;
       BEGIN
         FOR d IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE original AND NOT is_temporary LOOP
           tname := CASE
             WHEN d.object_type IN ('table', 'trigger', 'table constraint') THEN d.address_names[2]
             WHEN d.object_type = 'index' THEN (
               SELECT m.table_name FROM ${q}.migrations m
                WHERE m.table_schema = d.address_names[1] AND m.definition #>> '{newColumn,index,name}' = d.address_names[2]
                LIMIT 1)
           END;
           CONTINUE WHEN tname IS NULL;
           INSERT INTO ${q}.ddl_log (role, command_tag, object_type, object_identity, table_schema, table_name, statement)
           SELECT ${CALLER}, tg_tag, d.object_type, d.object_identity, d.address_names[1], tname, left(current_query(), 4000)
            WHERE EXISTS (SELECT FROM ${q}.migrations m
                           WHERE m.table_schema = d.address_names[1] AND m.table_name = tname AND ${IN_FLIGHT});
         END LOOP;
       EXCEPTION WHEN others THEN
         RAISE WARNING 'phaseflag: the DDL watch of state schema % could not record a statement: %', ${literal(s)}, SQLERRM;
       END;
     END
     $pf$`,
    [s],
  );
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
