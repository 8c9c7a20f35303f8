import assert from 'node:assert/strict';
import { defineMigration, silentLogger, StaticFlagSource } from '@phaseflag/core';
import { KnexRouter, Phaseflag, type MigrationHandle, type ResolvedMigration } from '@phaseflag/postgres';
import { internalsOf, runBackfill } from '@phaseflag/postgres/internal';
import { amountInput, type Suite } from '@phaseflag/testkit';
import type { Knex } from 'knex';
import { GatedStore } from './prop-gated-store.js';
import { amountOf, Model, type Op, type RunCase } from './prop-ops.js';

/** The transitions run between the segments, in order; contract comes at the end of every run. */
const ADVANCES = ['expand', 'dual-write', 'backfill', 'finish-backfill', 'verify', 'read-new'] as const;

interface Instance {
  pf: Phaseflag;
  db: Knex;
  gate: GatedStore;
  router: KnexRouter;
}

/**
 * Two service instances (an engine and a router each, on pools of their own, sharing the state schema) and the
 * run of one interleaving on a fresh tiny table and migration id; the table is dropped after the run.
 */
export class PropHarness {
  private readonly engines: { pf: Phaseflag; db: Knex }[];
  private runs = 0;
  /** Totals over every run, for the report. */
  readonly totals = { runs: 0, ops: 0, batches: 0, verifies: 0, rowsChecked: 0 };

  constructor(private readonly suite: Suite) {
    this.engines = [0, 1].map((i) => {
      const db = suite.newKnex({ pool: { min: 0, max: 4 }, applicationName: `prop-instance-${i}` });
      return { db, pf: new Phaseflag({ knex: db, stateSchema: suite.stateSchema, pollIntervalMs: 100, graceMs: 0 }) };
    });
  }

  async install(): Promise<void> {
    await this.engines[0]!.pf.install();
  }

  async close(): Promise<void> {
    for (const e of this.engines) await e.pf.close();
  }

  async run(c: RunCase): Promise<void> {
    const n = ++this.runs;
    const table = `prop_${n}`;
    const id = `prop-${n}`;
    const knex = this.suite.knex;
    await knex.raw('CREATE TABLE ?? (id bigint PRIMARY KEY, amount_cents integer NOT NULL, note text)', [table]);
    const model = new Model(c.rows);
    for (const [key, cents] of model.rows) await knex(table).insert({ id: key, amount_cents: cents });
    const def = defineMigration(
      amountInput(id, table, { batch: { size: c.batchSize, minSize: 1, maxSize: 5, targetBatchMs: 0, workers: 1 } }),
    );
    const handles = this.engines.map((e) => e.pf.migration(def));
    const m = handles[0]!;
    await m.register();
    const instances: Instance[] = [];
    try {
      for (const [i, e] of this.engines.entries()) {
        const gate = new GatedStore(internalsOf(e.pf).store);
        const flags = new StaticFlagSource({ [`${id}.read-new`]: true });
        const router = new KnexRouter(
          { knex: e.db, store: gate, logger: silentLogger },
          await handles[i]!.resolve(),
          flags,
          {
            heartbeatMs: 0,
            instanceId: `${id}-instance-${i}`,
          },
        );
        await router.ready();
        instances.push({ pf: e.pf, db: e.db, gate, router });
      }
      const step = { next: 0 };
      const state: RunState = { table, id, m, model, instances, step, batchSize: c.batchSize };
      // Each segment's operations run in its phase; the next transition runs after it (verify's checks on the way).
      for (const segment of c.segments) {
        for (const op of segment) await this.apply(op, state);
        await this.advance(state);
      }
      assert.equal(step.next, ADVANCES.length, 'the rollout reached read-new');
      for (const inst of instances) await inst.gate.deliver(id);
      await this.checkReads(table, model, instances, 'read-new');
      // Contract waits for every instance to report reads of the new column only.
      for (const inst of instances) await inst.router.heartbeat();
      await m.contract({ confirm: true });
      for (const inst of instances) await inst.gate.deliver(id);
      await this.checkTable(table, model, false);
      await this.checkReads(table, model, instances, 'contracted');
      this.totals.runs++;
      this.totals.ops += c.segments.flat().length;
    } finally {
      for (const inst of instances) await inst.router.close();
      await knex.raw('DROP TABLE IF EXISTS ??', [table]);
    }
  }

  private async apply(op: Op, r: RunState): Promise<void> {
    const { table, model, instances } = r;
    const inst = 'via' in op ? instances[op.via]! : undefined;
    const router = inst?.router;
    const db = inst?.db;
    switch (op.k) {
      case 'insert': {
        const key = model.freshId();
        const values = op.side === 'old' ? { amount_cents: op.cents } : { amount: amountOf(op.cents) };
        await db!(table).insert(router!.row({ id: key, ...values }));
        model.rows.set(key, op.cents);
        return;
      }
      case 'update-old':
      case 'update-new':
      case 'update-other':
      case 'update-key':
      case 'delete': {
        const key = model.pick(op.row);
        if (key === null) return;
        if (op.k === 'delete') {
          await db!(table).where({ id: key }).delete();
          model.rows.delete(key);
          return;
        }
        let values: Record<string, unknown>;
        if (op.k === 'update-old') values = { amount_cents: op.cents };
        else if (op.k === 'update-new') values = { amount: amountOf(op.cents) };
        else if (op.k === 'update-other') values = { note: `note ${key}` };
        else values = { id: model.freshId() };
        const row = router!.row(values);
        if (Object.keys(row).length > 0) await db!(table).where({ id: key }).update(row);
        if (op.k === 'update-old' || op.k === 'update-new') model.rows.set(key, op.cents);
        if (op.k === 'update-key') {
          model.rows.set(values.id as number, model.rows.get(key)!);
          model.rows.delete(key);
        }
        return;
      }
      case 'batches':
        return this.batches(op.n, r);
      case 'deliver':
        return inst!.gate.deliver(r.id);
    }
  }

  /** Runs `n` batches of the backfill (the internal runner, stopped after `n`), only while backfilling. */
  private async batches(n: number, r: RunState): Promise<void> {
    const { ctx, store } = internalsOf(this.engines[0]!.pf);
    if ((await store.get(r.id))?.phase !== 'backfilling') return;
    // Resolved once per run: the catalog does not change while the backfill runs.
    r.resolved ??= await r.m.resolve();
    let left = n;
    const result = await runBackfill(ctx, r.resolved, {
      batch: { size: r.batchSize, targetBatchMs: 0, workers: 1 },
      shouldContinue: () => left-- > 0,
      reclaim: { enabled: false },
    });
    this.totals.batches += result.batches;
  }

  private async advance(r: RunState): Promise<void> {
    const { m } = r;
    const what = ADVANCES[r.step.next];
    if (what === undefined) return;
    r.step.next++;
    if (what === 'expand') await m.expand();
    else if (what === 'dual-write') await m.startDualWrite();
    else if (what === 'backfill') await m.startBackfill();
    else if (what === 'finish-backfill') {
      const run = await m.runBackfill();
      assert.equal(run.phase, 'backfilled', `the backfill completes (${JSON.stringify(run)})`);
    } else if (what === 'verify') {
      const result = await m.verify({ batchSize: 3 });
      assert.equal(result.clean, true, `verify is clean: ${JSON.stringify(result)}`);
      this.totals.verifies++;
      await this.checkTable(r.table, r.model, true);
      await this.checkReads(r.table, r.model, r.instances, null);
    } else await m.readNew();
  }

  /** No lost, extra or wrong row: the keys and old values the model holds, and new = derivation(old). */
  private async checkTable(table: string, model: Model, oldToo: boolean): Promise<void> {
    const rows = (await this.suite.knex(table).select('id', 'amount_cents', 'amount').orderBy('id')) as Array<{
      id: string;
      amount_cents: number;
      amount: string | null;
    }>;
    const expected = model.expected();
    assert.deepEqual(
      rows.map((x) => `${x.id}:${x.amount}`),
      expected.map((e) => `${e.split(':')[0]}:${amountOf(Number(e.split(':')[1]))}`),
      'the new column holds every row, derived from the value the application last wrote',
    );
    if (oldToo)
      assert.deepEqual(
        rows.map((x) => `${x.id}:${x.amount_cents}`),
        expected,
        'the old column too',
      );
    this.totals.rowsChecked += rows.length;
  }

  /** Through each instance, at the phase it applies: the column it reads, and the same values in both meanings. */
  private async checkReads(table: string, model: Model, instances: Instance[], phase: string | null): Promise<void> {
    for (const [i, inst] of instances.entries()) {
      const applied = inst.router.core.currentPhase;
      if (phase !== null) assert.equal(applied, phase, `instance ${i} applies ${phase}`);
      const readsNew = applied === 'read-new' || applied === 'contracted';
      assert.equal(inst.router.column(), readsNew ? 'amount' : 'amount_cents', `instance ${i} at ${applied}`);
      const rows = (await inst
        .db(table)
        .select('id', inst.router.select(), inst.router.select(undefined, { meaning: 'old' }))
        .orderBy('id')) as Array<{ id: string; amount: string; amount_cents: number }>;
      assert.deepEqual(
        rows.map((x) => `${x.id}:${x.amount_cents}:${x.amount}`),
        [...model.rows.entries()].sort((a, b) => a[0] - b[0]).map(([k, c]) => `${k}:${c}:${amountOf(c)}`),
        `reads through instance ${i} at ${applied}`,
      );
    }
  }
}

interface RunState {
  table: string;
  id: string;
  m: MigrationHandle;
  model: Model;
  instances: Instance[];
  step: { next: number };
  batchSize: number;
  resolved?: ResolvedMigration;
}
