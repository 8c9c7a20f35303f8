import {
  ConflictError,
  isPhase,
  StateError,
  type InstanceReport,
  type Phase,
  type PhaseSnapshot,
  type RouterStore,
  type ShadowReport,
} from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ExecutorContext } from '../context.js';
import { installStateStore } from './installer.js';
import type { EventRow, InstanceRow, MigrationRow } from './rows.js';
import { PhaseWatcher } from './watcher.js';
import { channelName } from '../sql/channels.js';
import { recordShadowReads } from './shadow-reads.js';

/** Channel on which every transition is announced, one per state schema so that stores never hear each other. */
export function notifyChannel(stateSchema: string): string {
  return channelName('phase', stateSchema);
}

/**
 * The state store: Postgres is the truth about every migration's phase. Transitions are compare-and-set on
 * (phase, version) in the same transaction as their event row and a NOTIFY, so watchers learn of them at once
 * and a lost race is an error, never a silent overwrite.
 */
export class PostgresStateStore implements RouterStore {
  private watcher: PhaseWatcher | undefined;

  constructor(
    readonly ctx: ExecutorContext,
    private readonly options: { pollIntervalMs?: number } = {},
  ) {}

  private t(name: string): Knex.Raw {
    return this.ctx.knex.raw('??.??', [this.ctx.stateSchema, name]);
  }

  install(): Promise<{ from: number; to: number }> {
    return installStateStore(this.ctx);
  }

  async get(id: string, db: Knex | Knex.Transaction = this.ctx.knex, lock = false): Promise<MigrationRow | null> {
    const q = db.select('*').from(this.t('migrations')).where({ id });
    const row = (await (lock ? q.forUpdate() : q).first()) as MigrationRow | undefined;
    if (!row) return null;
    return {
      ...row,
      version: Number(row.version),
      rows_backfilled: Number(row.rows_backfilled),
      rows_estimate: row.rows_estimate === null ? null : Number(row.rows_estimate),
    };
  }

  /** Inserts the migration in `pending` if the store does not know it yet. */
  async register(
    row: Pick<MigrationRow, 'id' | 'table_schema' | 'table_name' | 'old_column' | 'new_column' | 'definition'>,
  ): Promise<MigrationRow> {
    await this.ctx.knex.raw(
      `INSERT INTO ??.migrations (id, table_schema, table_name, old_column, new_column, definition, updated_by)
       VALUES (?, ?, ?, ?, ?, ?::jsonb, ?) ON CONFLICT (id) DO NOTHING`,
      [
        this.ctx.stateSchema,
        row.id,
        row.table_schema,
        row.table_name,
        row.old_column,
        row.new_column,
        JSON.stringify(row.definition),
        this.ctx.actor,
      ],
    );
    return (await this.get(row.id))!;
  }

  async updateDefinition(id: string, definition: Record<string, unknown>): Promise<void> {
    await this.update(id, { definition: JSON.stringify(definition) });
  }

  /** Every recorded migration's id and phase (a small table: one row per migration). */
  async ids(): Promise<{ id: string; phase: string }[]> {
    return this.ctx.knex(this.t('migrations')).select('id', 'phase');
  }

  /** Other in-flight migrations that touch one of the given columns of the same table. */
  async conflicts(id: string, schema: string, table: string, columns: readonly string[]): Promise<string[]> {
    const rows = await this.ctx.knex.raw<{ rows: { id: string }[] }>(
      `SELECT id FROM ??.migrations
        WHERE id <> ? AND table_schema = ? AND table_name = ?
          AND phase NOT IN ('pending', 'contracted', 'rolled-back')
          AND (old_column = ANY(?) OR new_column = ANY(?))`,
      [this.ctx.stateSchema, id, schema, table, columns, columns],
    );
    return rows.rows.map((r) => r.id);
  }

  /** Moves the phase if it is still `from` at `version`; records the event and announces it, atomically. */
  async recordTransition(
    trx: Knex.Transaction,
    t: {
      id: string;
      from: Phase;
      to: Phase;
      version: number;
      action: string;
      reason?: string;
      detail?: Record<string, unknown>;
      extra?: Record<string, unknown>;
    },
  ): Promise<PhaseSnapshot> {
    const updated = await trx(this.t('migrations'))
      .where({ id: t.id, phase: t.from, version: t.version })
      .update({
        ...t.extra,
        phase: t.to,
        version: t.version + 1,
        updated_by: this.ctx.actor,
        updated_at: trx.fn.now(),
      });
    if (updated !== 1) {
      throw new ConflictError(
        'PF_MIGRATION_CONFLICT',
        `Migration "${t.id}" changed while "${t.action}" was deciding.`,
        {
          value: { expected: { phase: t.from, version: t.version } },
          migrationId: t.id,
          hint: 'Another process moved it at the same moment; read its status and try again.',
        },
      );
    }
    await this.insertEvent(trx, {
      migration_id: t.id,
      kind: 'transition',
      action: t.action,
      from_phase: t.from,
      to_phase: t.to,
      reason: t.reason ?? null,
      detail: t.detail ?? null,
    });
    await trx.raw('SELECT pg_notify(?, ?)', [
      notifyChannel(this.ctx.stateSchema),
      JSON.stringify({ id: t.id, phase: t.to, version: t.version + 1 }),
    ]);
    return { migrationId: t.id, phase: t.to, version: t.version + 1 };
  }

  async recordEvent(
    e: Omit<EventRow, 'id' | 'at' | 'actor'>,
    db: Knex | Knex.Transaction = this.ctx.knex,
  ): Promise<void> {
    await this.insertEvent(db, e);
  }

  private async insertEvent(db: Knex | Knex.Transaction, e: Omit<EventRow, 'id' | 'at' | 'actor'>): Promise<void> {
    await db(this.t('events')).insert({
      ...e,
      actor: this.ctx.actor,
      detail: e.detail === null ? null : JSON.stringify(e.detail),
    });
  }

  async events(id: string, limit = 50): Promise<EventRow[]> {
    const rows = (await this.ctx.knex
      .select('*')
      .from(this.t('events'))
      .where({ migration_id: id })
      .orderBy('id', 'desc')
      .limit(limit)) as EventRow[];
    return rows.reverse().map((r) => ({ ...r, id: Number(r.id) }));
  }

  async update(
    id: string,
    values: Record<string, unknown>,
    db: Knex | Knex.Transaction = this.ctx.knex,
  ): Promise<void> {
    await db(this.t('migrations'))
      .where({ id })
      .update({ ...values, updated_at: db.fn.now() });
  }

  /**
   * The service side's background queries (the watcher's poll, heartbeats, phase and LSN reads, an instance's
   * removal) run one at a time, so an idle service instance holds at most one pooled connection for phaseflag
   * (bench case 9 counts them).
   */
  private turn: Promise<unknown> = Promise.resolve();
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.turn.then(fn, fn);
    this.turn = next.catch(() => undefined);
    return next;
  }

  async readPhase(migrationId: string): Promise<PhaseSnapshot> {
    try {
      const row = await this.inTurn(() =>
        this.ctx.knex.select('phase', 'version').from(this.t('migrations')).where({ id: migrationId }).first(),
      );
      if (!row) return { migrationId, phase: 'pending', version: 0 };
      return { migrationId, phase: isPhase(row.phase) ? row.phase : 'unknown', version: Number(row.version) };
    } catch (error) {
      throw new StateError(
        'PF_STATE_UNAVAILABLE',
        `Cannot read the phase of "${migrationId}": ${(error as Error).message}`,
        {
          value: migrationId,
          migrationId,
          cause: error,
          hint: 'Check the database connection; services keep their last known phase meanwhile.',
        },
      );
    }
  }

  /** The WAL position recorded when the migration became verified (pg_lsn text), null when none is. */
  async verifiedLsn(migrationId: string): Promise<string | null> {
    const row = (await this.inTurn(() =>
      this.ctx.knex
        .select(this.ctx.knex.raw('verified_lsn::text AS lsn'))
        .from(this.t('migrations'))
        .where({ id: migrationId })
        .first(),
    )) as { lsn: string | null } | undefined;
    return row?.lsn ?? null;
  }

  watchPhase(migrationId: string, listener: (snapshot: PhaseSnapshot) => void): () => void {
    this.watcher ??= new PhaseWatcher(this.ctx, {
      channel: notifyChannel(this.ctx.stateSchema),
      pollIntervalMs: this.options.pollIntervalMs ?? 1000,
      inTurn: (fn) => this.inTurn(fn),
    });
    return this.watcher.watch(migrationId, listener);
  }

  async heartbeat(report: InstanceReport): Promise<void> {
    await this.inTurn(() => this.heartbeatNow(report));
  }

  private async heartbeatNow(report: InstanceReport): Promise<void> {
    await this.ctx.knex.raw(
      `INSERT INTO ??.instances (instance_id, migration_id, phase, writes_old, writes_new, reads_old, reads_new, host, pid, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())
       ON CONFLICT (instance_id, migration_id) DO UPDATE SET phase = EXCLUDED.phase, writes_old = EXCLUDED.writes_old,
         writes_new = EXCLUDED.writes_new, reads_old = EXCLUDED.reads_old, reads_new = EXCLUDED.reads_new, last_seen = now()`,
      [
        this.ctx.stateSchema,
        report.instanceId,
        report.migrationId,
        report.phase,
        report.writesOld,
        report.writesNew,
        report.readsOld,
        report.readsNew,
        process.env.HOSTNAME ?? null,
        process.pid,
      ],
    );
  }

  recordShadow(report: ShadowReport): Promise<void> {
    return this.inTurn(() => recordShadowReads(this.ctx, report));
  }

  async removeInstance(instanceId: string, migrationId: string): Promise<void> {
    await this.inTurn(() =>
      this.ctx.knex(this.t('instances')).where({ instance_id: instanceId, migration_id: migrationId }).delete(),
    );
  }

  /** Every instance that reported on the migration; `live` when its heartbeat is younger than ttlMs. */
  async instances(migrationId: string, ttlMs: number): Promise<InstanceRow[]> {
    const rows = await this.ctx.knex.raw<{ rows: Record<string, unknown>[] }>(
      `SELECT instance_id, phase, writes_old, writes_new, reads_old, reads_new, host, pid, last_seen,
              last_seen > now() - make_interval(secs => ?::double precision / 1000) AS live
         FROM ??.instances WHERE migration_id = ? ORDER BY instance_id`,
      [ttlMs, this.ctx.stateSchema, migrationId],
    );
    return rows.rows.map((r) => ({
      instanceId: r.instance_id as string,
      phase: isPhase(r.phase) ? r.phase : 'unknown',
      writesOld: r.writes_old as boolean,
      writesNew: r.writes_new as boolean,
      readsOld: r.reads_old as boolean,
      readsNew: r.reads_new as boolean,
      host: r.host as string | null,
      pid: r.pid as number | null,
      lastSeen: r.last_seen as Date,
      live: r.live as boolean,
    }));
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
