import { quoteIdent } from '@phaseflag/core';
import type { Knex } from 'knex';
import { createDdlWatchObjects } from './ddl-watch-sql.js';

/**
 * The state store's tables, as an ordered list of versions. The installer applies the versions a database has
 * not seen yet, each in its own transaction, under an advisory lock, so two processes starting at once do not
 * race. Append new versions at the end; never edit one that has shipped.
 */
export interface SchemaVersion {
  readonly version: number;
  readonly up: (trx: Knex.Transaction, schema: string) => Promise<void>;
}

export const SCHEMA_VERSIONS: readonly SchemaVersion[] = [
  {
    version: 1,
    up: async (trx, s) => {
      await trx.raw(
        `CREATE TABLE ??.migrations (
        id text PRIMARY KEY,
        table_schema text NOT NULL,
        table_name text NOT NULL,
        old_column text,
        new_column text NOT NULL,
        definition jsonb NOT NULL,
        phase text NOT NULL DEFAULT 'pending',
        version bigint NOT NULL DEFAULT 0,
        created_new_column boolean NOT NULL DEFAULT false,
        rows_estimate bigint,
        rows_backfilled bigint NOT NULL DEFAULT 0,
        backfill_started_at timestamptz,
        backfill_completed_at timestamptz,
        verify_result jsonb,
        verified_at timestamptz,
        updated_by text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
        [s],
      );
      await trx.raw(
        `CREATE TABLE ??.events (
        id bigserial PRIMARY KEY,
        migration_id text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        kind text NOT NULL,
        action text,
        from_phase text,
        to_phase text,
        actor text,
        reason text,
        detail jsonb
      )`,
        [s],
      );
      await trx.raw('CREATE INDEX ON ??.events (migration_id, id)', [s]);
      await trx.raw(
        `CREATE TABLE ??.instances (
        instance_id text NOT NULL,
        migration_id text NOT NULL,
        phase text NOT NULL,
        writes_old boolean NOT NULL,
        writes_new boolean NOT NULL,
        reads_old boolean NOT NULL,
        reads_new boolean NOT NULL,
        host text,
        pid integer,
        started_at timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (instance_id, migration_id)
      )`,
        [s],
      );
      await trx.raw(
        `CREATE TABLE ??.backfill_ranges (
        migration_id text NOT NULL,
        worker integer NOT NULL,
        lower_key jsonb,
        upper_key jsonb NOT NULL,
        checkpoint jsonb,
        done boolean NOT NULL DEFAULT false,
        rows_done bigint NOT NULL DEFAULT 0,
        batches bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (migration_id, worker)
      )`,
        [s],
      );
    },
  },
  {
    // Runtime knobs of a running backfill (batch size, operator throttle, delay between batches), set from any
    // process and read by the runner between batches: gh-ost's interactive commands, through the database.
    version: 2,
    up: async (trx, s) => {
      await trx.raw(`ALTER TABLE ??.migrations ADD COLUMN backfill_overrides jsonb NOT NULL DEFAULT '{}'::jsonb`, [s]);
    },
  },
  {
    // The old column dropped at contract, and its type then: a service started afterwards still resolves the
    // migration (reads and writes use the new column only), and can still type the old values it is given.
    version: 3,
    up: async (trx, s) => {
      await trx.raw(
        'ALTER TABLE ??.migrations ADD COLUMN old_column_dropped_at timestamptz, ADD COLUMN old_column_type text',
        [s],
      );
    },
  },
  {
    // Never break the application, never mix data:
    // - underivable: rows whose new value the backfill expression could not compute (recorded by the sync trigger
    //   instead of failing the application's write, by the preflight, the backfill and verify); they block verified.
    // - preflight_result: the last preflight over the existing rows (counts, failures, time, accepted or not).
    // - reads_held_at: read-old sent every read back; reads stay old until the read-new intent is given again.
    // - backfill_ranges.dual_write_version: the phase version of the dual-write the ranges were bounded in; ranges
    //   bounded in an earlier dual-write (before a stop-dual-write) are stale and never reused.
    version: 4,
    up: async (trx, s) => {
      await trx.raw(
        `CREATE TABLE ??.underivable (
        migration_id text NOT NULL,
        key jsonb NOT NULL,
        old_value text,
        error text NOT NULL,
        sqlstate text,
        source text NOT NULL,
        definition_hash text,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (migration_id, key)
      )`,
        [s],
      );
      await trx.raw(
        'ALTER TABLE ??.migrations ADD COLUMN preflight_result jsonb, ADD COLUMN reads_held_at timestamptz',
        [s],
      );
      await trx.raw('ALTER TABLE ??.backfill_ranges ADD COLUMN dual_write_version bigint', [s]);
      // The sync trigger records a row it cannot derive through this function instead of failing the
      // application's write. SECURITY DEFINER: application roles need no privilege on the state tables (only
      // USAGE on the schema, which the trigger function lives in anyway); the pinned search_path keeps a caller's
      // path from redirecting the INSERT. Re-recording a key keeps one row per key with the latest error and its
      // first source (the backfill skips rows the preflight or the trigger recorded, not those it stopped on).
      await trx.raw(
        `CREATE FUNCTION ??.pf_record_underivable(p_migration text, p_key jsonb, p_old_value text, p_error text, p_sqlstate text, p_source text)
        RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $pf$
          INSERT INTO ${quoteIdent(s)}.underivable (migration_id, key, old_value, error, sqlstate, source)
          VALUES (p_migration, p_key, p_old_value, p_error, p_sqlstate, p_source)
          ON CONFLICT (migration_id, key) DO UPDATE SET old_value = EXCLUDED.old_value, error = EXCLUDED.error,
            sqlstate = EXCLUDED.sqlstate, recorded_at = clock_timestamp()
        $pf$`,
        [s],
      );
    },
  },
  {
    // Read replicas: the primary's WAL insert position taken in the verify transition's own transaction. A replica
    // that has replayed past it holds every row the backfill wrote and verify checked, so a router reading from it
    // may read the new column. Migrations verified before this version get the position of this upgrade, which
    // comes after their verify: later than needed, never too early.
    version: 5,
    up: async (trx, s) => {
      await trx.raw('ALTER TABLE ??.migrations ADD COLUMN verified_lsn pg_lsn', [s]);
      await trx.raw(
        `UPDATE ??.migrations SET verified_lsn = pg_current_wal_insert_lsn()
          WHERE phase IN ('verified', 'read-new', 'contracted')`,
        [s],
      );
    },
  },
  {
    // DDL that phaseflag did not run, on the table of a migration in flight, recorded as it happens (see
    // ddl-watch-sql.ts): the log table and the event triggers' functions. The event triggers themselves need a
    // superuser and are created apart from the versions (ddl-watch.ts), where the installing role may.
    version: 6,
    up: (trx, s) => createDdlWatchObjects(trx, s),
  },
  {
    // Shadow reads: each service instance adds the rows its reads compared (and the mismatches, a bounded sample)
    // per `verified` it compared them in (the migration's phase version then). Rows outlive the instance (the
    // comparisons happened); the read-new guard sums the current version's over instances.
    version: 7,
    up: async (trx, s) => {
      await trx.raw(
        `CREATE TABLE ??.shadow_reads (
        migration_id text NOT NULL,
        phase_version bigint NOT NULL,
        instance_id text NOT NULL,
        compared bigint NOT NULL DEFAULT 0,
        mismatched bigint NOT NULL DEFAULT 0,
        mismatches jsonb NOT NULL DEFAULT '[]'::jsonb,
        first_at timestamptz NOT NULL DEFAULT now(),
        last_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (migration_id, phase_version, instance_id)
      )`,
        [s],
      );
    },
  },
];

export const LATEST_SCHEMA_VERSION = SCHEMA_VERSIONS[SCHEMA_VERSIONS.length - 1]!.version;
