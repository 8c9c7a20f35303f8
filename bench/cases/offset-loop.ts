import type { Knex } from 'knex';
import type { Change } from '../lib/orders.js';

/** What users write by hand, and what the tools we compare with default to: batches of 1000 rows. */
export const OFFSET_BATCH = 1000;

export interface OffsetLoopResult {
  completed: boolean;
  /** Rows the loop updated before it finished or hit the cap. */
  rowsMeasured: number;
  secondsMeasured: number;
  /** Measured when completed; otherwise measured time plus the extrapolated rest. */
  totalSeconds: number;
  /** Fitted cost of one batch, seconds: a + b × offset (least squares over the measured batches). */
  fit: { a: number; b: number } | null;
}

/**
 * The hand-written loop, as knex users write it, in its most charitable form: one set-based UPDATE per batch
 * (not one statement per row), each its own transaction:
 *
 *   UPDATE orders SET new = expr WHERE id IN (SELECT id FROM orders ORDER BY id LIMIT 1000 OFFSET n)
 *
 * OFFSET n reads and discards n index entries (and, once rows have been updated, their dead versions too), so
 * the k-th batch costs O(k) and the whole loop O(rows²). It runs until the table is done or `capMs` has passed;
 * then the rest is extrapolated from a straight-line fit of batch time against offset, summed over the batches
 * left. Extrapolated figures are marked as such in the report.
 */
export async function runOffsetLoop(
  knex: Knex,
  change: Change,
  schema: string,
  rows: number,
  capMs: number,
): Promise<OffsetLoopResult> {
  const table = `${schema}.orders`;
  const samples: { offset: number; seconds: number }[] = [];
  const started = performance.now();
  let offset = 0;
  let completed = false;
  for (;;) {
    const t0 = performance.now();
    const updated = await knex(table)
      .whereIn('id', knex(table).select('id').orderBy('id').limit(OFFSET_BATCH).offset(offset))
      .update({ [change.newColumn]: knex.raw(`(${change.expression})::${change.newType}`) });
    samples.push({ offset, seconds: (performance.now() - t0) / 1000 });
    offset += OFFSET_BATCH;
    if (updated < OFFSET_BATCH || offset >= rows) {
      completed = true;
      break;
    }
    if (performance.now() - started >= capMs) break;
  }
  const secondsMeasured = (performance.now() - started) / 1000;
  const rowsMeasured = Math.min(offset, rows);
  const fit = linearFit(samples);
  let totalSeconds = secondsMeasured;
  if (!completed && fit) {
    for (let o = offset; o < rows; o += OFFSET_BATCH) totalSeconds += Math.max(0, fit.a + fit.b * o);
  }
  return { completed, rowsMeasured, secondsMeasured, totalSeconds, fit };
}

function linearFit(points: readonly { offset: number; seconds: number }[]): { a: number; b: number } | null {
  // The first batches include connection set-up and a cold cache; the fit uses the later half.
  const use = points.length >= 8 ? points.slice(Math.floor(points.length / 2)) : points;
  if (use.length < 2) return null;
  const n = use.length;
  const mx = use.reduce((s, p) => s + p.offset, 0) / n;
  const my = use.reduce((s, p) => s + p.seconds, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of use) {
    sxy += (p.offset - mx) * (p.seconds - my);
    sxx += (p.offset - mx) ** 2;
  }
  const b = sxx === 0 ? 0 : Math.max(0, sxy / sxx);
  return { a: my - b * mx, b };
}
