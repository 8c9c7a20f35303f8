import { randomUUID } from 'node:crypto';
import {
  Derived,
  quoteIdent,
  Router,
  TRACER_NAME,
  ValidationError,
  writesBoth,
  type FlagContext,
  type FlagSource,
  type Logger,
  type RouteDecision,
  type RouterStore,
} from '@phaseflag/core';
import type { Knex } from 'knex';
import { metrics, type Meter } from '@opentelemetry/api';
import { parseSelectOptions, selectItem, type SelectOptions } from './read-select.js';
import { ReplicaGate } from './replica-gate.js';
import { hookResponses, ShadowCollector } from './shadow-collector.js';
import { shadowItem } from './shadow-select.js';
import { parseReplicaOptions, type KnexRouterOptions } from './router-options.js';
import type { ResolvedMigration } from '../catalog/resolved.js';
import { expressionValue, forKnex } from '../sql/text.js';

/** What a router is built from: the application's knex, the state store port, a logger, and who tracks it. */
export interface KnexRouterDeps {
  readonly knex: Knex;
  /** With `verifiedLsn` (the WAL position recorded at verified) when routers may be given a replica. */
  readonly store: RouterStore & { verifiedLsn?(migrationId: string): Promise<string | null> };
  readonly logger: Logger;
  /** Where the replica gate counts its holds (default: the global meter provider's). */
  readonly meter?: Meter;
  /** Called once at construction (the Phaseflag closes its routers); returns the function close() calls. */
  readonly track?: (router: KnexRouter) => () => void;
}

export type { KnexRouterOptions };

/**
 * The Router for knex users: keeps the core Router on the database's phase, renders derived values as SQL and
 * reads one representation whatever the phase (`select()`). Per-request work is the core Router's decision (a
 * few property reads) plus building the row the application was going to write anyway. Given a `replica`, its
 * reads also wait for that replica to replay the verified data (replica-gate.ts).
 */
export class KnexRouter {
  readonly core: Router;
  readonly instanceId: string;
  private readonly knex: Knex;
  private readonly store: RouterStore;
  private readonly logger: Logger;
  private readonly untrack: () => void;
  private readonly unsubscribe: () => void;
  private readonly heartbeatTimer: NodeJS.Timeout | undefined;
  /** Present with the `replica` option: holds reads on the old column until the replica has the verified data. */
  private readonly gate: ReplicaGate | undefined;
  /** Present when the migration declares shadow reads: takes the comparisons off the rows and counts them. */
  private readonly shadow: ShadowCollector | undefined;
  private readonly unhook: () => void;
  private initial: Promise<void>;
  private closed = false;
  /** The last heartbeat written or being written; the next waits for it. */
  private beats: Promise<void> = Promise.resolve();

  /** @internal Made by `MigrationHandle.router()`. */
  constructor(
    deps: KnexRouterDeps,
    private readonly resolved: ResolvedMigration,
    flags: FlagSource,
    options: KnexRouterOptions = {},
  ) {
    const m = resolved.migration;
    // Contract dropped the old column: contracted is final, so the router starts there and no snapshot (a
    // store not answering yet, a stale or missing row) can send a read or a write to a column that is gone.
    const snapshot = resolved.oldColumnDropped
      ? { migrationId: m.id, phase: 'contracted' as const, version: Number.MAX_SAFE_INTEGER }
      : undefined;
    const replica = parseReplicaOptions(options, m.id);
    this.core = new Router(m, { flags, snapshot });
    this.gate = replica && this.replicaGate(deps, replica.replica, replica.checkMs);
    this.knex = deps.knex;
    this.store = deps.store;
    this.logger = deps.logger;
    this.shadow = m.shadow ? new ShadowCollector(this.core, deps.meter) : undefined;
    this.unhook = this.shadow ? hookResponses([deps.knex, replica?.replica], this.shadow) : () => undefined;
    this.instanceId =
      options.instanceId ?? `${process.env.HOSTNAME ?? 'host'}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.unsubscribe = deps.store.watchPhase(m.id, (s) => {
      const before = this.core.currentPhase;
      this.core.update(s);
      const checked = this.gate?.observe(s);
      // With a replica, the report waits for the check the phase change started: it says where reads really go.
      if (before !== this.core.currentPhase) void (checked ?? Promise.resolve()).then(() => this.heartbeat());
    });
    this.initial = deps.store.readPhase(m.id).then(
      (s) => {
        this.core.update(s);
        return this.gate?.observe(s);
      },
      (e) => {
        deps.logger.warn('phaseflag: cannot read the phase yet; reading old and writing old until the store answers', {
          error: (e as Error).message,
        });
      },
    );
    const every = options.heartbeatMs ?? 5000;
    if (every > 0) {
      this.heartbeatTimer = setInterval(() => void this.heartbeat(), every);
      this.heartbeatTimer.unref();
      this.initial = this.initial.then(() => this.heartbeat());
    }
    this.untrack = deps.track?.(this) ?? (() => undefined);
  }

  private replicaGate(deps: KnexRouterDeps, replica: Knex, checkMs: number): ReplicaGate {
    const id = this.resolved.migration.id;
    const store = deps.store;
    if (store.verifiedLsn === undefined) {
      throw new ValidationError('PF_INVALID_OPTIONS', 'This router cannot read the verified WAL position.', {
        value: 'replica',
        migrationId: id,
        hint: 'Make routers with a replica through `handle.router(flags, { replica })`.',
      });
    }
    return new ReplicaGate({
      migrationId: id,
      replica,
      verifiedLsn: () => store.verifiedLsn!(id),
      hold: (held) => this.core.holdReads(held),
      logger: deps.logger,
      meter: deps.meter ?? metrics.getMeterProvider().getMeter(TRACER_NAME),
      checkMs,
    });
  }

  /**
   * Takes shadow comparisons off rows read through another knex than the Phaseflag's (or the router's replica),
   * whose responses the router does not see, and counts them; returns the rows. Nothing to do for other rows.
   */
  collectShadow<T>(rows: T): T {
    this.shadow?.collect(rows);
    return rows;
  }

  /**
   * Resolves once the router has read the phase from the store (or failed to and stays on the safe side) and, with a
   * `replica`, asked the replica once where the phase is read-new.
   */
  ready(): Promise<void> {
    return this.initial;
  }

  decide(context?: FlagContext): RouteDecision {
    return this.core.decide(context);
  }

  /**
   * The physical column the read rule picks for this request, or null when nothing can be read yet. Its values
   * change meaning when reads switch (cents, then units): prefer `select()`, which never does.
   */
  column(context?: FlagContext): string | null {
    return this.core.readColumn(context);
  }

  /**
   * One select-list item for `.select(...)` that means the same in every phase: by default the new column's
   * meaning under the new column's name — derived in SQL from the old column with the backfill expression until
   * reads switch for this request, the new column itself after. `{ meaning: 'old' }` gives the old column's
   * meaning under its name instead (the reverse expression once reads switch); `as` renames, `table` qualifies
   * the columns (an alias in a join). See read-select.ts.
   */
  select(context?: FlagContext, options?: SelectOptions): Knex.Raw {
    const o = parseSelectOptions(options, this.resolved.migration.id);
    const d = this.core.decideRead(context);
    const item = selectItem(this.knex, this.resolved, this.core.currentPhase, d.read, o);
    // A shadow read answers the same value and carries the comparison beside it (shadow-select.ts).
    if (this.shadow === undefined || !o.shadow || !this.core.shadows(context)) return item;
    return this.knex.raw('?, ?', [item, shadowItem(this.knex, this.resolved, o.table, this.shadow.column)]);
  }

  /**
   * The row to INSERT or UPDATE: both columns where the phase wants both, the missing side derived in SQL from
   * the supplied values with the migration's expression. When the expression needs columns the row does not
   * supply (an UPDATE of a few columns), the derived side is left to the sync trigger, which sees the whole row.
   */
  row(values: Record<string, unknown>, context?: FlagContext): Record<string, unknown> {
    const out = this.core.writeValues(values, context);
    // While the sync trigger is live it derives the missing side over the whole row, inside an exception
    // block: a value the expression cannot map is recorded instead of failing the application's statement,
    // which a derivation in the statement itself (plain SQL has no exception handling) would do.
    const triggerDerives =
      this.resolved.migration.sync.trigger &&
      this.core.currentPhase !== 'unknown' &&
      writesBoth(this.core.currentPhase);
    for (const [key, value] of Object.entries(out)) {
      if (!(value instanceof Derived)) continue;
      if (triggerDerives) {
        delete out[key];
        continue;
      }
      const inputs =
        value.target === this.resolved.migration.newColumn.name
          ? this.resolved.backfillInputs
          : this.resolved.reverseInputs;
      const missing = inputs.filter((c) => !Object.prototype.hasOwnProperty.call(value.row, c));
      if (missing.length > 0) {
        if (this.resolved.migration.sync.trigger) {
          delete out[key];
          continue;
        }
        throw new ValidationError(
          'PF_INVALID_OPTIONS',
          `Cannot derive ${value.target} without ${missing.join(', ')}.`,
          {
            value: Object.keys(value.row),
            migrationId: this.resolved.migration.id,
            hint: `Include ${missing.join(', ')} in the write, or turn the sync trigger on so the database derives it from the whole row.`,
          },
        );
      }
      out[key] = this.derive(value, inputs);
    }
    return out;
  }

  private derive(value: Derived, inputs: readonly string[]): Knex.Raw {
    // The expression is evaluated over a one-row subquery that names the supplied values like the table's
    // columns, typed as the table types them, so "lower(email)" means the same here as in the backfill.
    // A router resolved before expand does not see the new column in `columns`: its type is the declared one.
    const typeOf = (c: string) =>
      this.resolved.columns.get(c)?.type ??
      (c === this.resolved.migration.newColumn.name ? this.resolved.newColumnType : 'text');
    // Names quoted, not bound as knex identifiers (`??`), which knex splits on "." (see read-select.ts). A
    // type's text may hold "?" too (a type in a schema named so): escaped for knex like the expression.
    const select = inputs.map((c) => `?::${forKnex(typeOf(c))} AS ${quoteIdent(c)}`).join(', ');
    const bindings = inputs.map((c) => value.row[c]);
    const targetType =
      value.target === this.resolved.migration.newColumn.name
        ? this.resolved.newColumnType
        : this.resolved.oldColumn!.type;
    const expression = forKnex(expressionValue(value.expression, targetType));
    if (inputs.length === 0) return this.knex.raw(expression);
    return this.knex.raw(`(SELECT ${expression} FROM (SELECT ${select}) AS pf_row)`, bindings);
  }

  /**
   * Reports the phase this instance applies, what it writes and whether it read the old column lately. Reports are
   * written one after the other, each from the state when its turn comes: one started earlier (at a phase change)
   * can never land after a later one and put back what the instance did before.
   */
  heartbeat(): Promise<void> {
    const next = this.beats.then(() => this.beat());
    this.beats = next;
    return next;
  }

  private async beat(): Promise<void> {
    if (this.closed) return;
    const d = this.core.decide();
    const reads = this.core.takeReadCounts();
    const readsOld = reads.oldReads > 0 || (reads.newReads === 0 && d.read === 'old');
    try {
      await this.store.heartbeat({
        instanceId: this.instanceId,
        migrationId: this.resolved.migration.id,
        phase: this.core.currentPhase,
        writesOld: d.writeOld,
        writesNew: d.writeNew,
        readsOld,
        readsNew: reads.newReads > 0 || d.read === 'new',
      });
    } catch (error) {
      this.logger.warn('phaseflag: heartbeat failed', { error: (error as Error).message });
    }
    await this.reportShadow();
  }

  /** Adds this instance's shadow comparisons since the last report to its counts in the state store. */
  private reportShadow(): Promise<void> {
    const id = { instanceId: this.instanceId, migrationId: this.resolved.migration.id };
    return (
      this.shadow?.flush((t) => this.store.recordShadow?.({ ...id, ...t }) ?? Promise.resolve(), this.logger) ??
      Promise.resolve()
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.unhook();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.gate?.close();
    await this.initial.catch(() => undefined);
    // A report still being written would put the instance back after its removal.
    await this.beats;
    await this.reportShadow(); // the last comparisons
    await this.store.removeInstance(this.instanceId, this.resolved.migration.id).catch(() => undefined);
    this.untrack();
  }
}
