/**
 * The application's writes during a fault: inserts, updates of the old column and deletes on an `amount_cents`
 * table (createAmountTable's), by plain SQL, so that the sync trigger keeps the new column right. It remembers every
 * write Postgres acknowledged; `lostWrites()` then counts those the table no longer shows. A write that failed (the
 * server went away under it) is not acknowledged: its row's value is unknown and it is left out of the count.
 */
import type { Knex } from 'knex';

export interface WriterReport {
  inserts: number;
  updates: number;
  deletes: number;
  failed: number;
  /** Acknowledged writes: inserts + updates + deletes. */
  writes: number;
  /** Acknowledged writes whose row is not as written: missing, still there after a delete, or another value. */
  lost: number;
}

export class FaultWriter {
  /** id → amount_cents as last acknowledged, null once deleted. */
  private readonly expected = new Map<number, number | null>();
  private readonly live: number[] = [];
  private readonly uncertain = new Set<number>();
  private readonly counts = { inserts: 0, updates: 0, deletes: 0, failed: 0 };
  private running = false;
  private loops: Promise<void>[] = [];
  readonly errors: string[] = [];

  /** `seededIds`: ids 1..n that exist when it starts (their values are checked only once written). */
  constructor(
    private readonly knex: Knex,
    private readonly table: string,
    seededIds: number,
    private readonly pauseMs = 2,
    /** false: inserts and updates only, so that a backfill's row count can be checked exactly. */
    private readonly deletes = true,
  ) {
    for (let id = 1; id <= seededIds; id++) this.live.push(id);
  }

  start(concurrency = 2): void {
    this.running = true;
    this.loops = Array.from({ length: concurrency }, (_, lane) => this.loop(lane, concurrency));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  get writes(): number {
    return this.counts.inserts + this.counts.updates + this.counts.deletes;
  }

  private async loop(lane: number, lanes: number): Promise<void> {
    while (this.running) {
      const r = Math.random();
      const cents = Math.floor(Math.random() * 1_000_000);
      // Lanes own disjoint ids (id % lanes), so no two acknowledged writes race on one row.
      const pick = (): number | undefined => {
        for (let i = 0; i < 8; i++) {
          const id = this.live[Math.floor(Math.random() * this.live.length)];
          if (id !== undefined && id % lanes === lane && !this.uncertain.has(id)) return id;
        }
        return undefined;
      };
      let target: number | undefined;
      try {
        if (r < 0.3) {
          const rows = (
            await this.knex.raw(`INSERT INTO ?? (amount_cents) VALUES (?) RETURNING id`, [this.table, cents])
          ).rows as { id: string }[];
          const id = Number(rows[0]!.id);
          this.expected.set(id, cents);
          this.live.push(id);
          this.counts.inserts++;
        } else if (r < 0.85 || !this.deletes) {
          target = pick();
          if (target !== undefined) {
            await this.knex.raw('UPDATE ?? SET amount_cents = ? WHERE id = ?', [this.table, cents, target]);
            this.expected.set(target, cents);
            this.counts.updates++;
          }
        } else {
          target = pick();
          if (target !== undefined) {
            await this.knex.raw('DELETE FROM ?? WHERE id = ?', [this.table, target]);
            this.expected.set(target, null);
            this.live.splice(this.live.indexOf(target), 1);
            this.counts.deletes++;
          }
        }
      } catch (error) {
        this.counts.failed++;
        if (target !== undefined) this.uncertain.add(target);
        if (this.errors.length < 5) this.errors.push(String((error as Error).message));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (this.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
    }
  }

  /** Compares every acknowledged write with the table, in chunks of ids. */
  async report(knex: Knex = this.knex): Promise<WriterReport> {
    const ids = [...this.expected.keys()].filter((id) => !this.uncertain.has(id));
    let lost = 0;
    for (let i = 0; i < ids.length; i += 5000) {
      const chunk = ids.slice(i, i + 5000);
      const rows = (await knex.raw('SELECT id, amount_cents FROM ?? WHERE id = ANY(?::bigint[])', [this.table, chunk]))
        .rows as { id: string; amount_cents: number }[];
      const found = new Map(rows.map((row) => [Number(row.id), row.amount_cents]));
      for (const id of chunk) {
        const want = this.expected.get(id);
        const got = found.get(id);
        if (want === null ? got !== undefined : got !== want) lost++;
      }
    }
    return { ...this.counts, writes: this.writes, lost };
  }
}
