import type { BatchSettings } from '@phaseflag/core';

/** Weight of the newest batch in the running average (pt-online-schema-change uses a similar decaying average). */
const NEWEST_WEIGHT = 0.3;
/** A batch may grow at most this much at once: one fast batch (a cached, already-correct stretch) must not
 *  produce a huge one that then holds its row locks for seconds. */
const MAX_GROWTH = 2;
/**
 * A batch that took this many times its target ran long: its rows' locks were held that long, so an application
 * write on one of them waited that long. Its cost per row is taken at once rather than averaged in, so the next
 * batch is already sized for it (a slow stretch of the table, a busy server); the average then decays back as
 * batches run at the target again. Shrinking fast and growing slowly bounds the waits where a plain average
 * would let a run of long batches through.
 */
const RAN_LONG = 1.5;

/**
 * Sizes batches so each takes about `targetBatchMs` (pt-online-schema-change's --chunk-time): the time per row is
 * averaged over recent batches and the next size is the target divided by it, clamped to minSize..maxSize.
 * `targetBatchMs: 0` keeps the size fixed. `cap` (the application watch's) bounds the size from above.
 */
export class AdaptiveBatchSize {
  private current: number;
  private msPerRow: number | null = null;

  constructor(
    private readonly settings: Pick<BatchSettings, 'size' | 'minSize' | 'maxSize' | 'targetBatchMs'>,
    private readonly cap: () => number | null = () => null,
  ) {
    this.current = clamp(settings.size, settings.minSize, settings.maxSize);
  }

  get size(): number {
    const cap = this.cap();
    return cap === null ? this.current : Math.max(this.settings.minSize, Math.min(this.current, cap));
  }

  /** Feeds one committed batch: how many rows it examined and how long its transaction took. */
  observe(rows: number, ms: number): void {
    // The short last batch of a range is mostly fixed overhead (round trips, commit): it would make rows look
    // expensive and shrink the batches of the ranges still running.
    if (this.settings.targetBatchMs <= 0 || rows <= 0 || rows < this.size / 4) return;
    const sample = Math.max(ms, 0.01) / rows;
    const ranLong = this.msPerRow !== null && sample > this.msPerRow && ms > RAN_LONG * this.settings.targetBatchMs;
    this.msPerRow =
      this.msPerRow === null || ranLong ? sample : NEWEST_WEIGHT * sample + (1 - NEWEST_WEIGHT) * this.msPerRow;
    const ideal = this.settings.targetBatchMs / this.msPerRow;
    const next = Math.min(ideal, this.current * MAX_GROWTH);
    this.current = clamp(Math.round(next), this.settings.minSize, this.settings.maxSize);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
