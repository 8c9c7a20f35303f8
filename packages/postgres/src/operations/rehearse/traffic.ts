import type { TableRef } from './copy-definition.js';
import type { Knex } from 'knex';

/** One request of the synthetic application: when it was due, how long it took, whether it failed. */
export interface TrafficSample {
  readonly kind: 'read' | 'write';
  /** Epoch ms when the request was due (so time spent waiting for a pooled connection counts, as it would in an app). */
  readonly at: number;
  readonly ms: number;
  readonly error: string | null;
}

export interface TrafficOptions {
  knex: Knex;
  table: TableRef;
  /** The primary key's columns, and the key values to pick from (each an array in that order). */
  keyColumns: readonly string[];
  keys: readonly (readonly unknown[])[];
  readsPerS: number;
  writesPerS: number;
  /** Requests in flight at most (the pool of a small service); past it, requests queue and their wait counts. */
  maxInFlight?: number;
}

export interface TableActivity {
  /** Scans (sequential + index) per second: about one per query that reads the table. */
  readonly readsPerS: number;
  /** Rows inserted, updated and deleted per second. */
  readonly writesPerS: number;
  readonly windowMs: number;
}

/**
 * The table's reads and writes per second on the source: two reads of pg_stat_user_tables `windowMs` apart
 * (read-only; statistics reach the view within about a second of each transaction, PostgreSQL 15+).
 */
export async function sampleTableActivity(knex: Knex, table: TableRef, windowMs: number): Promise<TableActivity> {
  const read = async () =>
    (
      await knex.raw(
        `SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::float8 AS reads,
                (n_tup_ins + n_tup_upd + n_tup_del)::float8 AS writes
           FROM pg_stat_user_tables WHERE schemaname = ? AND relname = ?`,
        [table.schema, table.name],
      )
    ).rows[0] as { reads: number; writes: number } | undefined;
  const t0 = Date.now();
  const a = await read();
  await new Promise((r) => setTimeout(r, windowMs));
  const b = await read();
  const seconds = (Date.now() - t0) / 1000;
  if (!a || !b) return { readsPerS: 0, writesPerS: 0, windowMs };
  return {
    readsPerS: Math.max(0, (b.reads - a.reads) / seconds),
    writesPerS: Math.max(0, (b.writes - a.writes) / seconds),
    windowMs,
  };
}

/**
 * An open-loop synthetic application on the rehearsal copy: reads `SELECT * … WHERE key = $1` and writes
 * `UPDATE … SET key = key WHERE key = $1` (a write every phase accepts, which fires the table's triggers, the
 * sync trigger included, and takes the row lock an application's update takes) at fixed rates, keys drawn at
 * random. Requests are issued on a 10 ms tick whatever the earlier ones are doing, so a lock that stalls them
 * shows up as latency, not as fewer requests.
 */
export class SyntheticTraffic {
  readonly samples: TrafficSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private queue: (() => void)[] = [];
  private due = { read: 0, write: 0 };
  private last = 0;

  constructor(private readonly o: TrafficOptions) {}

  start(): void {
    if (this.timer || this.o.keys.length === 0) return;
    this.last = Date.now();
    this.timer = setInterval(() => this.tick(), 10);
  }

  /** Stops issuing requests and waits for those in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    while (this.inFlight.size > 0 || this.queue.length > 0) await Promise.all([...this.inFlight]);
  }

  private tick(): void {
    const now = Date.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    this.due.read += this.o.readsPerS * dt;
    this.due.write += this.o.writesPerS * dt;
    for (; this.due.read >= 1; this.due.read--) this.issue('read', now);
    for (; this.due.write >= 1; this.due.write--) this.issue('write', now);
  }

  private issue(kind: 'read' | 'write', at: number): void {
    const run = async () => {
      const key = this.o.keys[Math.floor(Math.random() * this.o.keys.length)]!;
      const where = Object.fromEntries(this.o.keyColumns.map((c, i) => [c, key[i]]));
      const q = this.o.knex.withSchema(this.o.table.schema).from(this.o.table.name).where(where);
      let error: string | null = null;
      try {
        if (kind === 'read') await q.first();
        else await q.update(Object.fromEntries(this.o.keyColumns.map((c) => [c, this.o.knex.ref(c)])));
      } catch (e) {
        error = (e as Error).message;
      }
      this.samples.push({ kind, at, ms: Date.now() - at, error });
    };
    const start = () => {
      const p: Promise<void> = run().finally(() => {
        this.inFlight.delete(p);
        this.queue.shift()?.();
      });
      this.inFlight.add(p);
    };
    if (this.inFlight.size < (this.o.maxInFlight ?? 8)) start();
    else this.queue.push(start);
  }
}

/** Up to `limit` primary-key values of the copy, to draw the traffic's keys from. */
export async function trafficKeys(
  knex: Knex,
  table: TableRef,
  keyColumns: readonly string[],
  limit: number,
): Promise<unknown[][]> {
  const rows = (await knex.withSchema(table.schema).from(table.name).select(keyColumns).limit(limit)) as Record<
    string,
    unknown
  >[];
  return rows.map((r) => keyColumns.map((c) => r[c]));
}
