import { SHADOW_SAMPLE_LIMIT, type ShadowFacts, type ShadowMismatch, type ShadowReport } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ExecutorContext } from '../context.js';

/**
 * The state store's `shadow_reads` (schema version 7): per migration, per `verified` (its phase version) and per
 * instance, the rows the instance's shadow reads compared and mismatched, with the first mismatches (at most
 * SHADOW_SAMPLE_LIMIT). Each report adds to the instance's row in one statement, so no count is lost to a race.
 */

/** One instance's shadow counts in one `verified`. */
export interface ShadowInstanceCounts {
  readonly instanceId: string;
  readonly compared: number;
  readonly mismatched: number;
  readonly mismatches: readonly ShadowMismatch[];
  readonly firstAt: Date;
  readonly lastAt: Date;
}

/** The shadow counts of the migration's current `verified`, summed, and per instance. */
export interface ShadowSummary {
  /** The phase version they were compared in. */
  readonly version: number;
  readonly compared: number;
  readonly mismatched: number;
  /** The earliest mismatches over every instance (at most SHADOW_SAMPLE_LIMIT), each naming its instance. */
  readonly mismatches: readonly ShadowMismatch[];
  readonly instances: readonly ShadowInstanceCounts[];
}

export async function recordShadowReads(ctx: ExecutorContext, r: ShadowReport): Promise<void> {
  await ctx.knex.raw(
    `INSERT INTO ??.shadow_reads AS t (migration_id, phase_version, instance_id, compared, mismatched, mismatches)
     VALUES (?, ?, ?, ?, ?, ?::jsonb)
     ON CONFLICT (migration_id, phase_version, instance_id) DO UPDATE SET
       compared = t.compared + EXCLUDED.compared,
       mismatched = t.mismatched + EXCLUDED.mismatched,
       mismatches = (SELECT coalesce(jsonb_agg(e ORDER BY n), '[]'::jsonb)
                       FROM jsonb_array_elements(t.mismatches || EXCLUDED.mismatches) WITH ORDINALITY AS x(e, n)
                      WHERE n <= ?),
       last_at = now()`,
    [
      ctx.stateSchema,
      r.migrationId,
      r.version,
      r.instanceId,
      r.compared,
      r.mismatched,
      JSON.stringify(r.mismatches.slice(0, SHADOW_SAMPLE_LIMIT)),
      SHADOW_SAMPLE_LIMIT,
    ],
  );
}

/** The counts of one `verified` (by phase version), per instance and summed. */
export async function shadowSummary(
  db: Knex | Knex.Transaction,
  stateSchema: string,
  migrationId: string,
  version: number,
): Promise<ShadowSummary> {
  const rows = (
    await db.raw<{ rows: Record<string, unknown>[] }>(
      `SELECT instance_id, compared, mismatched, mismatches, first_at, last_at FROM ??.shadow_reads
        WHERE migration_id = ? AND phase_version = ? ORDER BY instance_id`,
      [stateSchema, migrationId, version],
    )
  ).rows;
  const instances = rows.map((r) => ({
    instanceId: r.instance_id as string,
    compared: Number(r.compared),
    mismatched: Number(r.mismatched),
    mismatches: (r.mismatches as ShadowMismatch[]).map((m) => ({ ...m, instanceId: r.instance_id as string })),
    firstAt: r.first_at as Date,
    lastAt: r.last_at as Date,
  }));
  const mismatches = instances
    .flatMap((i) => i.mismatches)
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
    .slice(0, SHADOW_SAMPLE_LIMIT);
  return {
    version,
    compared: instances.reduce((n, i) => n + i.compared, 0),
    mismatched: instances.reduce((n, i) => n + i.mismatched, 0),
    mismatches,
    instances,
  };
}

/** The phase version of the last `verified` shadow reads were counted in (null: none yet). */
export async function lastShadowVersion(db: Knex, stateSchema: string, migrationId: string): Promise<number | null> {
  const row = (
    await db.raw<{ rows: { v: string | null }[] }>(
      'SELECT max(phase_version) AS v FROM ??.shadow_reads WHERE migration_id = ?',
      [stateSchema, migrationId],
    )
  ).rows[0];
  return row?.v == null ? null : Number(row.v);
}

/** The guard's facts from a summary and the declared settings. */
export function shadowFacts(settings: ShadowFacts['settings'], s: ShadowSummary): ShadowFacts {
  return { settings, compared: s.compared, mismatched: s.mismatched, firstMismatch: s.mismatches[0] ?? null };
}
