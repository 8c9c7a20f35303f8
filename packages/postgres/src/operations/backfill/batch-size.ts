import type { BatchSettings } from '@phaseflag/core';

/** Weight of the newest batch in the running average (pt-online-schema-change uses a similar decaying average). */
const NEWEST_WEIGHT = 0.3;
/** A batch may grow at most this much at once: one fast batch (a cached, already-correct stretch) must not
 *  produce a huge one that then holds its row locks for seconds. */
const MAX_GROWTH = 2;

/**
 * Sizes batches so each takes about `targetBatchMs` (pt-online-schema-change's --chunk-time): the time per row is
 * averaged over recent batches and the next size is the target divided by it, clamped to minSize..maxSize.
 * `targetBatchMs: 0` keeps the size fixed.
 */
export class AdaptiveBatchSize {
  private current: number;
  private msPerRow: number | null = null;

  constructor(private readonly settings: Pick<BatchSettings, 'size' | 'minSize' | 'maxSize' | 'targetBatchMs'>) {
    this.current = clamp(settings.size, settings.minSize, settings.maxSize);
  }

  get size(): number {
    return this.current;
  }

  /** Feeds one committed batch: how many rows it examined and how long its transaction took. */
  observe(rows: number, ms: number): void {
    // The short last batch of a range is mostly fixed overhead (round trips, commit): it would make rows look
    // expensive and shrink the batches of the ranges still running.
    if (this.settings.targetBatchMs <= 0 || rows <= 0 || rows < this.current / 4) return;
    const sample = Math.max(ms, 0.01) / rows;
    this.msPerRow = this.msPerRow === null ? sample : NEWEST_WEIGHT * sample + (1 - NEWEST_WEIGHT) * this.msPerRow;
    const ideal = this.settings.targetBatchMs / this.msPerRow;
    const next = Math.min(ideal, this.current * MAX_GROWTH);
    this.current = clamp(Math.round(next), this.settings.minSize, this.settings.maxSize);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
