import { ATTR } from '@phaseflag/core';
import type { Context } from '@opentelemetry/api';
import type { ExecutorContext } from '../../context.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { qualifiedTable } from './keys.js';
import type { Session } from '../../driver/session.js';

/** Span of one VACUUM run by the backfill. */
export const RECLAIM_SPAN = 'phaseflag.backfill.vacuum';

/**
 * Rows between two VACUUMs: this share of the table, so a run makes about 40 of them whatever its size (each
 * reads every index once, so their total cost grows like the table, not faster)…
 */
const EVERY_SHARE = 0.025;
/** …but never fewer rows than this (a VACUUM has a fixed cost) nor more (the table grows by about one interval). */
const EVERY_MIN_ROWS = 20_000;
const EVERY_MAX_ROWS = 1_000_000;
/**
 * After a VACUUM that took t ms, the next waits at least GAP_FACTOR × t, so VACUUMs run at most half of the run's
 * time. Each reads every index whole, and when they are slow (a large table, a busy machine) they would otherwise
 * keep a core from the workers; the interval grows instead, and the table a little with it. (On 10M rows, one
 * worker: 25-40 VACUUMs of about 0.3 s each, for a 31 s backfill.)
 */
const GAP_FACTOR = 1;

export interface ReclaimSettings {
  /** VACUUM the table while the backfill runs, so later batches reuse the space earlier ones freed (default true). */
  enabled: boolean;
  /** Rows updated between two VACUUMs; default: 2.5% of the table, clamped to 20k..1M. */
  everyRows?: number;
}

export interface ReclaimTotals {
  vacuums: number;
  vacuumMs: number;
}

/**
 * Keeps a backfill from doubling its table. Every batch writes a new version of each row it changes; on pages
 * filled to the brim (a table loaded and never updated) the new version lands on a fresh page at the end of the
 * table, and the old one stays behind as a dead tuple until a VACUUM. A single `UPDATE` of every row therefore
 * leaves the heap about twice its size. A batched backfill can do better: the rows of batch k are dead as soon as
 * it commits, and once VACUUM has pruned them and recorded their pages in the free space map, the new versions of
 * later batches go into those pages instead of extending the table. So the heap grows by the new column's own
 * bytes plus about one VACUUM interval.
 *
 * - `INDEX_CLEANUP ON`: only the heap pages changed since the last VACUUM are read (all-visible pages are
 *   skipped), but every index is read once per VACUUM. Measured on 1M rows, each VACUUM takes 20-50 ms and the
 *   heap ends 1.17× its size with one every 20k rows, against 1.21× with `INDEX_CLEANUP OFF`: without index
 *   cleanup the dead line pointers stay behind as 4-byte stubs that new tuples cannot reuse. The default, AUTO,
 *   skips the index pass when few pages have dead tuples, and Postgres 15 then leaves the pages it pruned out of
 *   the free space map until a later VACUUM: the space would not be reused during the run. A last VACUUM when the
 *   run completes covers the rows changed since the one before, so the backfill leaves no dead tuples behind; it
 *   counts in the backfill's duration.
 * - `SKIP_LOCKED`: VACUUM takes SHARE UPDATE EXCLUSIVE, which never blocks reads or writes, but would queue behind
 *   a DDL statement or autovacuum's own VACUUM; it skips the round instead.
 * - `TRUNCATE false`: giving empty pages at the end of the table back to the file system needs an ACCESS
 *   EXCLUSIVE lock, which would queue the application's statements; the pages are reused by later writes anyway.
 * - A VACUUM still running when the next one is due is not doubled, and the next one waits as long as the last one
 *   took (GAP_FACTOR): on a large table or a busy machine the interval stretches rather than taking a core from
 *   the workers.
 * - It runs on its own connection, beside the workers, which never wait for it.
 * - A role that does not own the table gets a warning from Postgres and nothing is vacuumed: the backfill itself
 *   is unaffected, the table only grows as it would without this.
 */
export class SpaceReclaimer {
  private readonly table: string;
  private readonly everyRows: number;
  private sinceLast = 0;
  private inFlight: Promise<void> | null = null;
  /** No VACUUM starts before this time (clock ms): see GAP_FACTOR. */
  private notBefore = 0;
  private failed = false;
  readonly totals: ReclaimTotals = { vacuums: 0, vacuumMs: 0 };

  constructor(
    private readonly ctx: ExecutorContext,
    r: ResolvedMigration,
    private readonly session: Session | null,
    private readonly settings: ReclaimSettings,
    rowsEstimate: number,
    private readonly parent: Context,
  ) {
    this.table = qualifiedTable(r);
    this.everyRows =
      settings.everyRows ?? Math.min(EVERY_MAX_ROWS, Math.max(EVERY_MIN_ROWS, Math.round(rowsEstimate * EVERY_SHARE)));
  }

  get active(): boolean {
    return this.settings.enabled && this.session !== null && !this.failed;
  }

  /** Called after each committed batch with the rows it changed; starts a VACUUM in the background when due. */
  noteUpdated(rows: number): void {
    if (!this.active) return;
    this.sinceLast += rows;
    if (this.sinceLast < this.everyRows || this.inFlight || this.ctx.clock.now() < this.notBefore) return;
    this.sinceLast = 0;
    this.inFlight = this.vacuum('interim').finally(() => {
      this.inFlight = null;
    });
  }

  /** Waits for a VACUUM in flight; after a completed run, one more for the rows changed since the last one. */
  async finish(completed: boolean): Promise<void> {
    await this.inFlight;
    if (completed && this.active && this.totals.vacuums > 0 && this.sinceLast > 0) {
      this.sinceLast = 0;
      await this.vacuum('final');
    }
  }

  private async vacuum(kind: 'interim' | 'final'): Promise<void> {
    const span = this.ctx.tracer.startSpan(
      RECLAIM_SPAN,
      { attributes: { 'phaseflag.vacuum.kind': kind, [ATTR.table]: this.table } },
      this.parent,
    );
    const started = this.ctx.clock.now();
    try {
      // Outside any transaction block (VACUUM refuses one); SKIP_LOCKED instead of lock_timeout.
      await this.session!.query(`VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED, TRUNCATE false) ${this.table}`);
      this.totals.vacuums++;
    } catch (error) {
      // Reclaiming space is a courtesy: a failure (cancelled by an operator, say) must not fail the backfill.
      this.failed = true;
      span.recordException(error as Error);
      this.ctx.logger.warn('backfill: VACUUM failed; the rest of the run goes without it', {
        table: this.table,
        error: (error as Error).message,
      });
    } finally {
      const ms = this.ctx.clock.now() - started;
      this.totals.vacuumMs += ms;
      this.notBefore = this.ctx.clock.now() + GAP_FACTOR * ms;
      span.end();
    }
  }
}
