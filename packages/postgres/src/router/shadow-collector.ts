import { randomUUID } from 'node:crypto';
import { metrics, trace, type Counter, type Meter } from '@opentelemetry/api';
import {
  ATTR,
  METRIC,
  SHADOW_EVENT,
  SHADOW_SAMPLE_LIMIT,
  TRACER_NAME,
  type Logger,
  type Router,
  type ShadowMismatch,
} from '@phaseflag/core';
import type { Knex } from 'knex';

/** Counts not yet reported, for one `verified` (phase version). */
export interface ShadowTally {
  readonly version: number;
  compared: number;
  mismatched: number;
  mismatches: ShadowMismatch[];
}

const isRow = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Takes a shadow read's comparison off the rows it came back with, before the application sees them, and counts
 * it: per row compared, per row whose columns differed (with its key, old and new value, the first
 * SHADOW_SAMPLE_LIMIT kept), as OpenTelemetry counters, one event on the span active when the rows arrive (the
 * application's read), and a tally the router reports to the state store with its heartbeat. The router feeds it
 * every query response of its knex (`query-response`: pooled queries and transactions alike); a response without
 * its column costs one property check.
 */
export class ShadowCollector {
  /** The select-list name of this router's comparison: unique per router, so two migrations never mix. */
  readonly column = `pf_shadow_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  private tallies = new Map<number, ShadowTally>();
  private readonly comparedCounter: Counter;
  private readonly mismatchedCounter: Counter;

  /** `router`: the core router whose phase the comparisons count in; `meter` default: the global provider's. */
  constructor(
    private readonly router: Router,
    meter: Meter = metrics.getMeterProvider().getMeter(TRACER_NAME),
  ) {
    this.comparedCounter = meter.createCounter(METRIC.shadowCompared, {
      unit: '{row}',
      description: 'Rows shadow reads compared: the new column against the backfill expression over the old one',
    });
    this.mismatchedCounter = meter.createCounter(METRIC.shadowMismatched, {
      unit: '{row}',
      description: 'Rows shadow reads compared whose new column differed from the backfill expression',
    });
  }

  /** Takes the comparison off every row of a response (an array of rows, a pg result, or one row) and counts it. */
  collect(response: unknown): void {
    const rows: unknown[] | null = Array.isArray(response)
      ? response
      : isRow(response) && Array.isArray(response.rows)
        ? (response.rows as unknown[])
        : isRow(response)
          ? [response]
          : null;
    const first = rows?.[0];
    if (!isRow(first) || !(this.column in first)) return;
    const at = new Date().toISOString();
    let compared = 0;
    const found: ShadowMismatch[] = [];
    let mismatched = 0;
    for (const row of rows!) {
      if (!isRow(row) || !(this.column in row)) continue;
      const value = row[this.column];
      delete row[this.column];
      compared++;
      if (value === null || value === undefined) continue;
      mismatched++;
      if (found.length < SHADOW_SAMPLE_LIMIT) found.push(parseMismatch(value, at));
    }
    this.count(compared, mismatched, found);
  }

  private count(compared: number, mismatched: number, found: ShadowMismatch[]): void {
    const id = this.router.migration.id;
    this.comparedCounter.add(compared, { [ATTR.migrationId]: id });
    if (mismatched > 0) this.mismatchedCounter.add(mismatched, { [ATTR.migrationId]: id });
    trace.getActiveSpan()?.addEvent(SHADOW_EVENT, {
      [ATTR.migrationId]: id,
      [ATTR.shadowCompared]: compared,
      [ATTR.shadowMismatched]: mismatched,
      [ATTR.shadowMismatchKeys]: found.map((m) => JSON.stringify(m.key)),
    });
    // Rows that arrive after the phase left verified say nothing about the next one: counted above, not reported.
    if (this.router.currentPhase !== 'verified') return;
    const version = this.router.currentVersion;
    const t = this.tallies.get(version) ?? { version, compared: 0, mismatched: 0, mismatches: [] };
    t.compared += compared;
    t.mismatched += mismatched;
    t.mismatches.push(...found.slice(0, SHADOW_SAMPLE_LIMIT - t.mismatches.length));
    this.tallies.set(version, t);
  }

  /** The counts since the last call (one tally per `verified`), and starts again from zero. */
  take(): ShadowTally[] {
    const out = [...this.tallies.values()];
    this.tallies = new Map();
    return out;
  }

  /** Sends each tally (the router's report to the state store); one that fails is kept for the next call. */
  async flush(send: (t: ShadowTally) => Promise<void>, logger: Logger): Promise<void> {
    for (const t of this.take()) {
      try {
        await send(t);
      } catch (error) {
        this.restore(t);
        logger.warn('phaseflag: shadow report failed; kept for the next heartbeat', {
          error: (error as Error).message,
        });
      }
    }
  }

  /** Puts back a tally whose report failed, to go with the next one. */
  restore(t: ShadowTally): void {
    const now = this.tallies.get(t.version);
    if (!now) {
      this.tallies.set(t.version, t);
      return;
    }
    now.compared += t.compared;
    now.mismatched += t.mismatched;
    now.mismatches = [...t.mismatches, ...now.mismatches].slice(0, SHADOW_SAMPLE_LIMIT);
  }
}

/** `[[key…], old, new]` as the comparison's SQL builds it (json text; a driver may have parsed it already). */
function parseMismatch(value: unknown, at: string): ShadowMismatch {
  try {
    const v = (typeof value === 'string' ? JSON.parse(value) : value) as [unknown[], string | null, string | null];
    return { key: v[0], old: v[1], new: v[2], at };
  } catch {
    return { key: [String(value)], old: null, new: null, at };
  }
}

/** Feeds every query response of the given knex instances (transactions included) to the collector; returns unhook. */
export function hookResponses(knexes: readonly (Knex | undefined)[], shadow: ShadowCollector): () => void {
  const listener = (response: unknown) => shadow.collect(response);
  const hooked = [...new Set(knexes.filter((k): k is Knex => k !== undefined))];
  for (const k of hooked) k.on('query-response', listener);
  return () => hooked.forEach((k) => k.removeListener('query-response', listener));
}
