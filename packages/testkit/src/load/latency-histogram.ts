/**
 * Fixed-size latency histogram with log-spaced buckets: memory stays constant however long a load runs, and
 * each percentile is within one bucket width (4%) of the true value. The exact maximum is tracked separately
 * because the slowest statement is usually the one a zero-downtime test cares about.
 */
const MIN_MS = 0.01;
const GROWTH = 1.04;
const BUCKETS = Math.ceil(Math.log(600_000 / MIN_MS) / Math.log(GROWTH)) + 1; // up to 10 minutes

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private max = 0;

  record(ms: number): void {
    const index = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / Math.log(GROWTH)));
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.total++;
    if (ms > this.max) this.max = ms;
  }

  /** Upper bound of the bucket holding the `p`-quantile (0 < p ≤ 1), capped at the observed maximum. */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(p * this.total));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index] ?? 0;
      if (seen >= rank) return Math.min(MIN_MS * GROWTH ** index, this.max);
    }
    return this.max;
  }

  get maxMs(): number {
    return this.max;
  }
}
