import { defineMigration, type Migration, type MigrationInput } from '@phaseflag/core';
import type { Knex } from 'knex';
import { createContext, type ExecutorContext, type ExecutorContextOptions } from './context.js';
import { PostgresStateStore } from './store/state-store.js';
import type { KnexRouter } from './knex-router.js';
import { Controller, type ControllerOptions } from './controller.js';
import { MigrationHandle, type MigrationRef } from './migration-handle.js';

// The handle and the types of its options are defined beside it; they are re-exported here, where the package's
// index and its other modules have always found them.
export { MigrationHandle };
export type { BackfillOptions, MigrationRef, MigrationStatus, TransitionCause, TransitionOptions } from './migration-handle.js';

export interface PhaseflagOptions extends ExecutorContextOptions {
  /** How often watchers poll the state store as a backstop to LISTEN/NOTIFY. */
  pollIntervalMs?: number;
  /**
   * How long destructive steps (dropping a column at rollback or contract) wait after the phase change has been
   * announced, so that every service instance has stopped using the column before it goes.
   */
  graceMs?: number;
  /** Heartbeats older than this do not count as live instances. */
  instanceTtlMs?: number;
}

/**
 * The executor for one database: installs the state store and hands out a `MigrationHandle` per declared
 * migration. Dependencies are passed in; nothing global is touched except the OpenTelemetry API's defaults.
 */
export class Phaseflag {
  readonly ctx: ExecutorContext;
  readonly store: PostgresStateStore;
  readonly graceMs: number;
  readonly instanceTtlMs: number;
  readonly pollIntervalMs: number;
  private readonly handles = new Map<string, MigrationHandle>();
  private readonly routers = new Set<KnexRouter>();
  private readonly controllers = new Set<Controller>();

  constructor(options: PhaseflagOptions) {
    this.ctx = createContext(options);
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.graceMs = options.graceMs ?? 2 * this.pollIntervalMs;
    this.instanceTtlMs = options.instanceTtlMs ?? 30_000;
    this.store = new PostgresStateStore(this.ctx, { pollIntervalMs: this.pollIntervalMs });
  }

  get knex(): Knex {
    return this.ctx.knex;
  }

  install(): Promise<{ from: number; to: number }> {
    return this.store.install();
  }

  migration(definition: Migration | MigrationInput): MigrationHandle {
    const migration = 'primaryKey' in definition && Array.isArray(definition.primaryKey) && Object.isFrozen(definition)
      ? (definition as Migration) : defineMigration(definition as MigrationInput);
    const existing = this.handles.get(migration.id);
    if (existing) return existing;
    const handle = new MigrationHandle(this, migration);
    this.handles.set(migration.id, handle);
    return handle;
  }

  /**
   * A controller that moves the given migrations by their flags (see Controller). Call `start()`; any number of
   * instances may run one, one leads each migration at a time.
   */
  controller(migrations: MigrationRef | readonly MigrationRef[], options: ControllerOptions): Controller {
    const list = (Array.isArray(migrations) ? migrations : [migrations]) as readonly MigrationRef[];
    const controller = new Controller(this, list.map((m) => (m instanceof MigrationHandle ? m : this.migration(m))), options);
    this.controllers.add(controller);
    return controller;
  }

  /** @internal */
  trackRouter(router: KnexRouter): void {
    this.routers.add(router);
  }

  /** @internal */
  untrackRouter(router: KnexRouter): void {
    this.routers.delete(router);
  }

  /** Stops its controllers, closes its routers and the state store's watcher. */
  async close(): Promise<void> {
    for (const c of [...this.controllers]) await c.stop();
    this.controllers.clear();
    for (const r of [...this.routers]) await r.close();
    await this.store.close();
  }
}
