import { defineMigration, StateError, ValidationError, type Migration, type MigrationInput } from '@phaseflag/core';
import type { Knex } from 'knex';
import { MigrationHandle } from './api/handle.js';
import { createContext, type ExecutorContext, type ExecutorContextOptions } from './context.js';
import { Controller, type ControllerOptions } from './controller/controller.js';
import { directKnex } from './driver/direct.js';
import { acknowledgeRecordedDdl, inspectStoreDrift } from './operations/drift/inspect.js';
import type { StoreDriftReport } from './operations/drift/types.js';
import type { KnexRouter } from './router/knex-router.js';
import { grantStatements, grantTables, type GrantRole } from './store/grants.js';
import { assertStateStoreReadable, readStateStoreInfo, type StateStoreInfo } from './store/installer.js';
import { listStoredMigrations } from './store/listing.js';
import { PostgresStateStore } from './store/state-store.js';
import { toMigrationEvent, toMigrationRecord } from './transitions/records.js';
import type { MigrationEvent, MigrationRef, StoredMigration } from './types.js';

export interface PhaseflagOptions extends ExecutorContextOptions {
  /**
   * The database's own address (not a transaction pooler's), for the operator side: DDL, backfill, verify,
   * install, controllers. Phaseflag builds a small knex for it (pool min 0, max 5) and destroys it in `close()`.
   * Without it (or `direct`) the operator side uses `knex`. Routers and watchers always use `knex`.
   */
  directUrl?: string;
  /** Your own knex on the database's own address, instead of `directUrl` (not both); you destroy it. */
  direct?: Knex;
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

/** What the CLI and the tests may reach behind a Phaseflag (see the `./internal` entry). */
export interface PhaseflagInternals {
  /** The operator side's (on the direct knex when one is configured). */
  readonly ctx: ExecutorContext;
  readonly store: PostgresStateStore;
  /** The service side's, on the application's knex (routers, watching, heartbeats). */
  readonly service: { readonly ctx: ExecutorContext; readonly store: PostgresStateStore };
}

/**
 * Kept on the instance under a registered symbol, not in a module-level map: the package's two entries (main and
 * `./internal`) may each carry their own copy of this module (CommonJS builds do), and both must find it.
 */
const INTERNALS = Symbol.for('phaseflag.postgres.internals');

/** @internal The executor's context and state store, for the CLI and the tests; not part of the public API. */
export function internalsOf(pf: Phaseflag): PhaseflagInternals {
  return (pf as unknown as Record<symbol, PhaseflagInternals>)[INTERNALS]!;
}

/**
 * The executor for one database, and the composition root of this package: it makes the context and the state
 * store, and hands each `MigrationHandle`, `KnexRouter` and `Controller` exactly what it uses. Installs the state
 * store; one handle per declared migration. Dependencies are passed in; nothing global is touched except the
 * OpenTelemetry API's defaults.
 */
export class Phaseflag {
  readonly graceMs: number;
  readonly instanceTtlMs: number;
  readonly pollIntervalMs: number;
  /** The operator side: transitions, backfill, verify, install, controllers, status (on the direct knex). */
  readonly #ctx: ExecutorContext;
  readonly #store: PostgresStateStore;
  /** The service side: routers and watchers, on the application's knex (which may be pooled). */
  readonly #service: { readonly ctx: ExecutorContext; readonly store: PostgresStateStore };
  /** Built here from `directUrl`, so destroyed here. */
  readonly #ownedDirect: Knex | undefined;
  readonly #handles = new Map<string, MigrationHandle>();
  readonly #routers = new Set<KnexRouter>();
  readonly #controllers = new Set<Controller>();

  constructor(options: PhaseflagOptions) {
    const serviceCtx = createContext(options);
    this.pollIntervalMs = durationOption(options, 'pollIntervalMs', 1, 1000);
    this.graceMs = durationOption(options, 'graceMs', 0, 2 * this.pollIntervalMs);
    this.instanceTtlMs = durationOption(options, 'instanceTtlMs', 1, 30_000);
    const storeOptions = { pollIntervalMs: this.pollIntervalMs };
    const serviceStore = new PostgresStateStore(serviceCtx, storeOptions);
    this.#service = { ctx: serviceCtx, store: serviceStore };
    // Last: nothing may throw after a knex has been built here (it would be left open).
    const direct = directKnex(options);
    this.#ownedDirect = direct?.owned ? direct.knex : undefined;
    // Without a direct connection both sides share one context and one store (one watcher), as before.
    this.#ctx = direct ? { ...serviceCtx, knex: direct.knex } : serviceCtx;
    this.#store = direct ? new PostgresStateStore(this.#ctx, storeOptions) : serviceStore;
    Object.defineProperty(this, INTERNALS, {
      value: { ctx: this.#ctx, store: this.#store, service: this.#service } satisfies PhaseflagInternals,
    });
  }

  /** The application's knex it was given: the service side's (routers, watchers, heartbeats). */
  get knex(): Knex {
    return this.#service.ctx.knex;
  }

  /** The operator side's knex: `direct`, the one built from `directUrl`, or `knex` when neither was given. */
  get direct(): Knex {
    return this.#ctx.knex;
  }

  /** The schema holding phaseflag's own tables. */
  get stateSchema(): string {
    return this.#ctx.stateSchema;
  }

  /** Creates or upgrades the state store (idempotent); `from` and `to` are its schema versions. */
  install(): Promise<{ from: number; to: number }> {
    return this.#store.install();
  }

  /** Where the state store stands (installed? which version?), read-only: nothing is installed or upgraded. */
  stateStore(): Promise<StateStoreInfo> {
    return readStateStoreInfo(this.#ctx);
  }

  /**
   * Every migration the state store holds, declared here or not (one left in dual-write by a removed declaration
   * still has its trigger on the table). Read-only; PF_STATE_NOT_INSTALLED / PF_STATE_SCHEMA_OUTDATED when the
   * store is missing or older than this code.
   */
  async storedMigrations(): Promise<StoredMigration[]> {
    await assertStateStoreReadable(this.#ctx);
    return (await listStoredMigrations(this.#ctx)).map((m) => ({
      record: toMigrationRecord(m.row),
      syncTriggerInstalled: m.syncTriggerInstalled,
    }));
  }

  /**
   * The event log of a migration, oldest first (at most `limit`, the latest ones; default 10,000): every
   * transition, refusal, DDL step, backfill, verify and note. Read-only; works for an id no declaration names.
   * PF_UNKNOWN_MIGRATION when the store has neither the migration nor an event of it.
   */
  async history(id: string, options: { limit?: number } = {}): Promise<MigrationEvent[]> {
    await assertStateStoreReadable(this.#ctx);
    const events = await this.#store.events(id, options.limit ?? 10_000);
    if (events.length === 0 && !(await this.#store.get(id))) {
      throw new StateError('PF_UNKNOWN_MIGRATION', `Migration "${id}" is not in the state store.`, {
        value: id,
        migrationId: id,
        hint: 'Check the id (`phaseflag status` lists what the store holds).',
      });
    }
    return events.map(toMigrationEvent);
  }

  /**
   * The GRANT statements giving `to` the least a phaseflag role needs on these migrations' tables and the state
   * store (README "Privileges"): `service`, `controller` or `readonly`. Reads the catalog for the tables' owners;
   * runs nothing. The store must be installed first (`ON ALL TABLES IN SCHEMA` grants what exists).
   */
  async grants(options: { role: GrantRole; to: string; migrations: readonly MigrationRef[] }): Promise<string> {
    const tables = await grantTables(this.#ctx.knex, this.#declared(options.migrations));
    return `${grantStatements(options.role, options.to, this.#ctx.stateSchema, tables).join('\n')}\n`;
  }

  /**
   * Every given migration's table against what its phase implies (see `MigrationHandle.drift()`), with the state
   * store's version and whether DDL is watched. Reads only.
   */
  drift(migrations: readonly MigrationRef[]): Promise<StoreDriftReport> {
    return inspectStoreDrift({ ctx: this.#ctx, store: this.#store }, this.#declared(migrations));
  }

  /** Marks the DDL recorded on these migrations' tables as seen (`phaseflag drift --ack`); returns how many entries. */
  acknowledgeDdl(migrations: readonly MigrationRef[]): Promise<number> {
    return acknowledgeRecordedDdl({ ctx: this.#ctx, store: this.#store }, this.#declared(migrations));
  }

  #declared(refs: readonly MigrationRef[]): Migration[] {
    return refs.map((m) => this.migration('migration' in m ? m.migration : m).migration);
  }

  /** The handle of a declared migration (validated here; the same handle for the same id). */
  migration(definition: Migration | MigrationInput): MigrationHandle {
    const migration =
      'primaryKey' in definition && Array.isArray(definition.primaryKey) && Object.isFrozen(definition)
        ? (definition as Migration)
        : defineMigration(definition as MigrationInput);
    const existing = this.#handles.get(migration.id);
    if (existing) return existing;
    const handle = new MigrationHandle(
      {
        ctx: this.#ctx,
        store: this.#store,
        service: this.#service,
        graceMs: this.graceMs,
        instanceTtlMs: this.instanceTtlMs,
        trackRouter: (router) => {
          this.#routers.add(router);
          return () => this.#routers.delete(router);
        },
      },
      migration,
    );
    this.#handles.set(migration.id, handle);
    return handle;
  }

  /**
   * A controller that moves the given migrations by their flags (see Controller). Call `start()`; any number of
   * instances may run one, one leads each migration at a time.
   */
  controller(migrations: MigrationRef | readonly MigrationRef[], options: ControllerOptions): Controller {
    const list = (Array.isArray(migrations) ? migrations : [migrations]) as readonly MigrationRef[];
    const handles = list.map((m) => ('migration' in m ? this.migration(m.migration) : this.migration(m)));
    const controller = new Controller({ ctx: this.#ctx, instanceTtlMs: this.instanceTtlMs }, handles, options);
    this.#controllers.add(controller);
    return controller;
  }

  /** Stops its controllers, closes its routers and the state stores' watchers, and the knex built from `directUrl`. */
  async close(): Promise<void> {
    for (const c of [...this.#controllers]) await c.stop();
    this.#controllers.clear();
    for (const r of [...this.#routers]) await r.close();
    await this.#service.store.close();
    if (this.#store !== this.#service.store) await this.#store.close();
    await this.#ownedDirect?.destroy();
  }
}

/** A duration option: absent gives the default; anything but a finite number of ms ≥ `min` is PF_INVALID_OPTIONS. */
function durationOption(
  options: PhaseflagOptions,
  key: 'pollIntervalMs' | 'graceMs' | 'instanceTtlMs',
  min: number,
  fallback: number,
): number {
  const value: unknown = options[key];
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isFinite(value) && value >= min) return value;
  throw new ValidationError('PF_INVALID_OPTIONS', `Invalid ${key} ${JSON.stringify(value) ?? String(value)}.`, {
    value,
    hint: `Give ${key} in milliseconds, a finite number of at least ${min} (default ${fallback}).`,
  });
}
