/**
 * A load generator for the orders API that checks every answer. It keeps a model of what it wrote (and, given
 * `seededRows`, of what seed() stored), so a read that returns a wrong amount or e-mail counts as failed just
 * like an HTTP error: a migration that served one wrong value under load would show here.
 *
 * Each worker owns the rows it reads and writes (the ones it created, and seeded ids ≡ its index modulo the
 * concurrency), so the expected value of every row is known: no two requests of this generator race on a row.
 * Run one generator with `seededRows` per database; more than one would write each other's seeded rows.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { centsToAmount, normalizeEmail } from './migrations.js';
import { seededCustomerCount, seededCustomerEmail, seededOrder } from './schema.js';

export interface LoadOptions {
  /** Base URLs of service instances; requests go round-robin. */
  targets: string[];
  /** Concurrent workers. Default 4. */
  concurrency?: number;
  /** Share of requests that write. Default 0.3. */
  writeRatio?: number;
  /** Orders seed() created (ids 1…n): read and update those too. Default 0: only rows this generator creates. */
  seededRows?: number;
  /** Sleep after each request, per worker. Default 0. */
  pauseMs?: number;
  /** Distinct users sent as `x-user-id` (read-new rolls out by user). Default 1000. */
  users?: number;
  /** Per request. Default 10 000. */
  timeoutMs?: number;
}

export interface LoadReport {
  requests: number;
  /** Non-2xx, network errors and timeouts, and answers whose value differs from what was written. */
  failed: number;
  reads: number;
  writes: number;
  readsOld: number;
  readsNew: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** The first distinct failures, with method, path and target. */
  errorSamples: string[];
}

export interface LoadHandle {
  snapshot(): LoadReport;
  stop(): Promise<LoadReport>;
}

interface Order {
  customerId: number;
  cents: number;
}

export function startLoad(options: LoadOptions): LoadHandle {
  const targets = options.targets.map((t) => t.replace(/\/+$/, ''));
  if (targets.length === 0) throw new Error('startLoad: give at least one target URL');
  const concurrency = options.concurrency ?? 4;
  const writeRatio = options.writeRatio ?? 0.3;
  const seededRows = options.seededRows ?? 0;
  const seededCustomers = seededRows > 0 ? seededCustomerCount(seededRows) : 0;
  const users = options.users ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const counts = { requests: 0, failed: 0, reads: 0, writes: 0, readsOld: 0, readsNew: 0 };
  const samples = new Set<string>();
  const latency = new LogHistogram();
  let next = 0;
  let stopping = false;

  const fail = (what: string) => {
    counts.failed++;
    if (samples.size < 20) samples.add(what);
  };
  const rand = (n: number) => Math.floor(Math.random() * n);

  /** One request; the parsed body on 2xx, undefined (counted as failed) otherwise. */
  async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown> | undefined> {
    const target = targets[next++ % targets.length]!;
    const started = performance.now();
    counts.requests++;
    if (method === 'GET') counts.reads++;
    else counts.writes++;
    try {
      const res = await fetch(`${target}${path}`, {
        method,
        headers: { 'content-type': 'application/json', 'x-user-id': `u-${1 + rand(users)}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      latency.record(performance.now() - started);
      if (res.status < 200 || res.status > 299) {
        fail(`${method} ${path} → ${res.status} ${text.slice(0, 200)} (${target})`);
        return undefined;
      }
      return JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      latency.record(performance.now() - started);
      fail(`${method} ${path} → ${(error as Error).message} (${target})`);
      return undefined;
    }
  }

  async function worker(w: number): Promise<void> {
    const orders = new Map<number, Order>();
    const customers = new Map<number, string>(); // id → the email as last written
    const lost = new Set<string>(); // rows whose value is uncertain after a failed write: never checked again
    const pickSeeded = (count: number): number | undefined => {
      const slots = Math.floor((count - (w + 1)) / concurrency) + 1;
      return slots > 0 ? w + 1 + concurrency * rand(slots) : undefined;
    };
    const anyOrder = (): number | undefined => {
      const own = [...orders.keys()];
      const id =
        own.length > 0 && (seededRows === 0 || Math.random() < 0.5) ? own[rand(own.length)] : pickSeeded(seededRows);
      return id === undefined || lost.has(`o${id}`) ? undefined : id;
    };
    const anyCustomer = (): number | undefined => {
      const own = [...customers.keys()];
      const id =
        own.length > 0 && (seededCustomers === 0 || Math.random() < 0.5)
          ? own[rand(own.length)]
          : pickSeeded(seededCustomers);
      return id === undefined || lost.has(`c${id}`) ? undefined : id;
    };
    const expectedOrder = (id: number): Order =>
      orders.get(id) ??
      (() => {
        const s = seededOrder(id, seededRows);
        return { customerId: s.customerId, cents: s.amountCents };
      })();
    const expectedEmail = (id: number): string => normalizeEmail(customers.get(id) ?? seededCustomerEmail(id));
    const randomEmail = () =>
      `${Math.random() < 0.3 ? ' ' : ''}Load.${w}.${rand(1e9)}@${['Example.com', 'EXAMPLE.org', 'shop.Example.NET'][rand(3)]}${Math.random() < 0.3 ? '  ' : ''}`;
    const customerForOrder = (): number | undefined => {
      const own = [...customers.keys()];
      if (seededCustomers > 0) return 1 + rand(seededCustomers);
      return own.length > 0 ? own[rand(own.length)] : undefined;
    };

    async function write(): Promise<void> {
      const roll = Math.random();
      const cents = rand(10_000_000);
      if (roll < 0.35) {
        const customerId = customerForOrder();
        if (customerId === undefined) return void (await createCustomer());
        const body = await call('POST', '/orders', { customerId, amount: centsToAmount(cents) });
        if (body) orders.set(Number(body.id), { customerId, cents });
      } else if (roll < 0.7) {
        const id = anyOrder();
        if (id === undefined) return;
        const before = expectedOrder(id);
        const body = await call('PATCH', `/orders/${id}`, { amount: centsToAmount(cents) });
        if (body) orders.set(id, { customerId: before.customerId, cents });
        else lost.add(`o${id}`);
      } else if (roll < 0.85) {
        await createCustomer();
      } else {
        const id = anyCustomer();
        if (id === undefined) return;
        const email = randomEmail();
        const body = await call('PATCH', `/customers/${id}`, { email });
        if (body) customers.set(id, email);
        else lost.add(`c${id}`);
      }
    }

    async function createCustomer(): Promise<void> {
      const email = randomEmail();
      const body = await call('POST', '/customers', { email });
      if (body) customers.set(Number(body.id), email);
    }

    async function read(): Promise<void> {
      const orderRead = Math.random() < 0.7;
      const id = orderRead ? anyOrder() : anyCustomer();
      if (id === undefined) return write();
      const body = await call('GET', orderRead ? `/orders/${id}` : `/customers/${id}`);
      if (!body) return;
      if (body.readFrom === 'new') counts.readsNew++;
      else counts.readsOld++;
      if (orderRead) {
        const want = expectedOrder(id);
        if (body.amount !== centsToAmount(want.cents) || body.customerId !== want.customerId) {
          fail(
            `GET /orders/${id} (read ${String(body.readFrom)}) → amount ${JSON.stringify(body.amount)}, customer ${String(body.customerId)}; wrote ${centsToAmount(want.cents)}, customer ${want.customerId}`,
          );
        }
      } else if (body.email !== expectedEmail(id)) {
        fail(
          `GET /customers/${id} (read ${String(body.readFrom)}) → ${JSON.stringify(body.email)}; expected ${JSON.stringify(expectedEmail(id))}`,
        );
      }
    }

    while (!stopping) {
      await (Math.random() < writeRatio ? write() : read());
      if (options.pauseMs) await sleep(options.pauseMs);
    }
  }

  const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
  const snapshot = (): LoadReport => ({ ...counts, latencyMs: latency.summary(), errorSamples: [...samples] });
  let stopped: Promise<LoadReport> | undefined;
  return {
    snapshot,
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        await Promise.all(workers);
        return snapshot();
      })()),
  };
}

/** Latencies in buckets 2% wide from 0.05 ms to ~2 min: constant memory however long the load runs. */
class LogHistogram {
  private static readonly BASE = 0.05;
  private static readonly GROWTH = Math.log(1.02);
  private readonly buckets = new Float64Array(800);
  private count = 0;
  private max = 0;

  record(ms: number): void {
    const i =
      ms <= LogHistogram.BASE
        ? 0
        : Math.min(this.buckets.length - 1, Math.ceil(Math.log(ms / LogHistogram.BASE) / LogHistogram.GROWTH));
    this.buckets[i]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  summary(): { p50: number; p99: number; max: number } {
    return { p50: this.quantile(0.5), p99: this.quantile(0.99), max: round(this.max) };
  }

  /** The upper bound of the bucket holding the q-quantile (at most 2% above the true value, never above max). */
  private quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return round(Math.min(this.max, LogHistogram.BASE * Math.exp(i * LogHistogram.GROWTH)));
    }
    return round(this.max);
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;
