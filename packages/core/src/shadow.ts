/**
 * Shadow reads: an optional step between `verified` and `read-new`, in the spirit of LaunchDarkly's `shadow` stage.
 * While the migration is `verified` and its shadow flag is on for a request, the read answers with the old column's
 * value (as in every `verified` read) and also compares, in SQL beside the read, the new column with the backfill
 * expression over the old one (`new IS NOT DISTINCT FROM (backfill)::type`), at a sampling ratio. Each instance
 * reports its counts to the state store; the read-new guard sums them.
 *
 * Shadow is a mode of `verified`, not a phase: it never changes what a request reads or writes, so no transition
 * guards it, and an unknown or stale shadow flag only means no comparisons. The facts the read-new guard decides
 * from are the counts recorded in Postgres for the current `verified` (its phase version), never the flag.
 */

import { ValidationError } from './errors.js';
import { parseShadowDefaults, type ShadowInput } from './migration-schema.js';

/** The declaration's shadow settings, normalized (see migration-schema.ts). */
export interface ShadowSettings {
  /** The flag that turns comparisons on for a request (default `<id>.shadow`). */
  readonly flag: string;
  /** Share of reads that compare (0 < r <= 1). */
  readonly sampleRatio: number;
  /** Compared rows read-new needs, summed over instances. */
  readonly minCompared: number;
  /** Share of compared rows that must match (1: every one). */
  readonly minMatchRate: number;
}

/** One compared row whose new column differed from the backfill expression over its old column. */
export interface ShadowMismatch {
  /** The row's primary key values, in key order. */
  readonly key: readonly unknown[];
  /** The old column's value as text (null: NULL). */
  readonly old: string | null;
  /** The new column's value as text (null: NULL). */
  readonly new: string | null;
  /** When the read saw it (ISO 8601). */
  readonly at: string;
  /** The instance whose read saw it (filled in by the store). */
  readonly instanceId?: string;
}

/** What one instance reports: rows compared and mismatched since its last report, in one `verified` (by version). */
export interface ShadowReport {
  readonly instanceId: string;
  readonly migrationId: string;
  /** The phase version of the `verified` the comparisons were made in: each `verified` starts a new count. */
  readonly version: number;
  readonly compared: number;
  readonly mismatched: number;
  /** A bounded sample of the mismatches (at most SHADOW_SAMPLE_LIMIT). */
  readonly mismatches: readonly ShadowMismatch[];
}

/** Mismatches kept per report and per instance in the store. */
export const SHADOW_SAMPLE_LIMIT = 10;

/** The read-new guard's facts: the settings and the counts of the current `verified`, summed over instances. */
export interface ShadowFacts {
  readonly settings: ShadowSettings;
  readonly compared: number;
  readonly mismatched: number;
  /** The earliest mismatch seen (null when none). */
  readonly firstMismatch: ShadowMismatch | null;
}

/** compared − mismatched over compared; 0 when nothing was compared. */
export function shadowMatchRate(compared: number, mismatched: number): number {
  return compared === 0 ? 0 : (compared - mismatched) / compared;
}

const percent = (r: number): string => `${(Math.floor(r * 10_000) / 100).toString()}%`;

/**
 * Why read-new must wait for shadow reads, or null when it need not (no shadow configured, or enough rows compared
 * and matched). The reason stays the same while the counts grow (a controller records a refusal once per reason);
 * the counts are in the hint.
 */
export function shadowRefusal(
  s: ShadowFacts | undefined,
): { readonly allowed: false; readonly reason: string; readonly hint: string } | null {
  if (s === undefined) return null;
  const rate = shadowMatchRate(s.compared, s.mismatched);
  const counts = `${s.compared} row(s) compared, ${s.mismatched} mismatched (match rate ${percent(rate)}; needed: ${s.settings.minCompared} compared, ${percent(s.settings.minMatchRate)} matching)`;
  const m = s.firstMismatch;
  if (m !== null && s.mismatched > 0 && rate < s.settings.minMatchRate) {
    return {
      allowed: false,
      reason: `shadow reads found a row whose new column differs from the backfill expression over the old one: key ${JSON.stringify(m.key)}, old value ${JSON.stringify(m.old)}, new value ${JSON.stringify(m.new)}`,
      hint: `${counts}. Something writes the columns behind dual-write: find and stop it, then run repair (\`phaseflag repair <id>\`, repair()), which re-derives the rows that differ, verifies, and starts a new shadow count.`,
    };
  }
  if (s.compared < s.settings.minCompared || rate < s.settings.minMatchRate) {
    return {
      allowed: false,
      reason: `shadow reads have not compared enough rows since the migration became verified (at least ${s.settings.minCompared} needed)`,
      hint: `${counts}. Turn the shadow flag ${JSON.stringify(s.settings.flag)} on and let traffic read through router.select(); read-new follows once enough rows matched.`,
    };
  }
  return null;
}

/** The shadow settings with their defaults; a migration with nothing to compare (no old column or backfill) is refused. */
export function shadowSettings(
  m: { id: string; backfill: string | null; shadow?: true | ShadowInput },
  oldColumn: string | null,
): ShadowSettings | null {
  if (m.shadow === undefined) return null;
  if (oldColumn === null || m.backfill === null) {
    throw new ValidationError(
      'PF_INVALID_MIGRATION',
      `Migration "${m.id}" asks for shadow reads but has no ${oldColumn === null ? 'old column' : 'backfill expression'} to compare the new column with.`,
      {
        value: m.shadow,
        hint: 'Shadow reads compare the new column with the backfill expression over the old one: remove "shadow" for a brand-new column.',
        migrationId: m.id,
      },
    );
  }
  const s = m.shadow === true ? parseShadowDefaults() : { ...parseShadowDefaults(), ...m.shadow };
  return {
    flag: s.flag ?? `${m.id}.shadow`,
    sampleRatio: s.sampleRatio,
    minCompared: s.minCompared,
    minMatchRate: s.minMatchRate,
  };
}
