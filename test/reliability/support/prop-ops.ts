import fc from 'fast-check';

/** Which service instance issues an application write (each is a KnexRouter on its own pool). */
export type Via = 0 | 1;

/**
 * One step of an interleaving. Rows are picked by index into the rows alive at that moment (modulo their count),
 * so a shrunk or replayed case stays meaningful whatever was deleted before it.
 */
export type Op =
  | { k: 'insert'; via: Via; side: 'old' | 'new'; cents: number }
  | { k: 'update-old'; via: Via; row: number; cents: number }
  | { k: 'update-new'; via: Via; row: number; cents: number }
  | { k: 'update-other'; via: Via; row: number }
  | { k: 'update-key'; via: Via; row: number }
  | { k: 'delete'; via: Via; row: number }
  /** `n` backfill batches (each of the run's batch size), when the phase is backfilling. */
  | { k: 'batches'; n: number }
  /** The store's phase reaches instance `via` (its NOTIFY arrives); until then it applies an older one. */
  | { k: 'deliver'; via: Via };

export interface RunCase {
  /** Rows in the table before anything starts. */
  rows: number[];
  /** Backfill batch size, 1–5 rows. */
  batchSize: number;
  /**
   * The operations issued in each phase of the store, in order: pending, expanded, dual-write, backfilling,
   * backfilled, verified, read-new; the next transition runs between two segments (contract after the last).
   */
  segments: Op[][];
}

/** The phases the segments run in. */
export const SEGMENT_PHASES = [
  'pending',
  'expanded',
  'dual-write',
  'backfilling',
  'backfilled',
  'verified',
  'read-new',
];

const via = fc.constantFrom<Via>(0, 1);
const cents = fc.integer({ min: 0, max: 99_999 });
const row = fc.nat({ max: 50 });

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('insert' as const),
      via,
      side: fc.constantFrom('old' as const, 'new' as const),
      cents,
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('update-old' as const), via, row, cents }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('update-new' as const), via, row, cents }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('update-other' as const), via, row }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('update-key' as const), via, row }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('delete' as const), via, row }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('batches' as const), n: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('deliver' as const), via }) },
);

export const runCaseArb: fc.Arbitrary<RunCase> = fc.record({
  rows: fc.array(cents, { maxLength: 8, size: 'max' }),
  batchSize: fc.integer({ min: 1, max: 5 }),
  segments: fc.tuple(...SEGMENT_PHASES.map(() => fc.array(opArb, { maxLength: 6, size: 'max' }))),
});

/** What the table must hold: each live key and its amount in cents, as the application last wrote it. */
export class Model {
  readonly rows = new Map<number, number>();
  private nextId = 1;

  constructor(initial: readonly number[]) {
    for (const c of initial) this.rows.set(this.nextId++, c);
  }

  freshId(): number {
    return this.nextId++;
  }

  /** The key at `index` among the live keys in ascending order, or null when there is none. */
  pick(index: number): number | null {
    const keys = [...this.rows.keys()].sort((a, b) => a - b);
    return keys.length === 0 ? null : keys[index % keys.length]!;
  }

  /** Rows as `id:cents` in key order, for comparison with the table. */
  expected(): string[] {
    return [...this.rows.entries()].sort((a, b) => a[0] - b[0]).map(([id, c]) => `${id}:${c}`);
  }
}

/** The amount the backfill expression gives for `cents`, as numeric(12,2) text. */
export function amountOf(cents: number): string {
  return (cents / 100).toFixed(2);
}
