import { StateError, ValidationError } from '@phaseflag/core';
import type { Knex } from 'knex';
import type { ExecutorContext } from '../../context.js';
import type { Session } from '../../driver/session.js';
import { channelName } from '../../sql/channels.js';

/**
 * Runtime knobs of a backfill, as gh-ost's interactive commands (`chunk-size=`, `throttle`, `no-throttle`): an
 * operator changes them while the backfill runs, from its terminal or from another shell, and the runner applies
 * them between batches. They live in `migrations.backfill_overrides` (so any process may set them and they
 * outlive the run that saw them), and each change is announced on its own NOTIFY channel, which the runner
 * listens to on the connection that holds its lock. Pause is not a knob: it is a phase (`pause()`/`resume()`).
 */
export interface BackfillKnobs {
  /** Fixed rows per batch; null: the migration's (adaptive) sizing. */
  readonly batchSize: number | null;
  /** Held back by the operator until turned off, on top of replica lag and the throttle query. */
  readonly throttle: boolean;
  /** Sleep between batches; null: the migration's `batch.pauseMs`. */
  readonly pauseMs: number | null;
}

/** A change: a value sets the knob, null gives it back to the migration's settings, absent leaves it. */
export type BackfillKnobsPatch = { [K in keyof BackfillKnobs]?: BackfillKnobs[K] | null };

const isInt = (lo: number, hi: number) => (v: unknown) =>
  Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
const KNOB_CHECKS: Record<keyof BackfillKnobs, { ok: (v: unknown) => boolean; what: string }> = {
  batchSize: { ok: isInt(1, 1_000_000), what: 'an integer 1..1000000' },
  throttle: { ok: (v) => typeof v === 'boolean', what: 'a boolean' },
  pauseMs: { ok: isInt(0, 600_000), what: 'an integer 0..600000 (ms)' },
};

/** The patch's problems, one per bad or unknown key; empty when it is fine. */
function patchIssues(patch: unknown): string[] {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return ['(root): expected an object'];
  return Object.entries(patch).flatMap(([k, v]) => {
    const check = KNOB_CHECKS[k as keyof BackfillKnobs];
    if (!check) return [`${k}: unknown knob (batchSize, throttle, pauseMs)`];
    return v === undefined || v === null || check.ok(v)
      ? []
      : [`${k}: expected ${check.what} or null, got ${JSON.stringify(v)}`];
  });
}

export const NO_KNOBS: BackfillKnobs = Object.freeze({ batchSize: null, throttle: false, pauseMs: null });

/** The NOTIFY channel of knob changes, one per state schema (apart from the phase channel, whose listeners expect phases). */
export function knobsChannel(stateSchema: string): string {
  return channelName('knobs', stateSchema);
}

function fromJson(value: unknown): BackfillKnobs {
  const v = (value ?? {}) as Record<string, unknown>;
  return {
    batchSize: typeof v.batchSize === 'number' ? v.batchSize : null,
    throttle: v.throttle === true,
    pauseMs: typeof v.pauseMs === 'number' ? v.pauseMs : null,
  };
}

export async function readBackfillKnobs(db: Knex, stateSchema: string, migrationId: string): Promise<BackfillKnobs> {
  const row = (await db.raw('SELECT backfill_overrides FROM ??.migrations WHERE id = ?', [stateSchema, migrationId]))
    .rows[0] as { backfill_overrides: unknown } | undefined;
  if (!row) throw unknownMigration(stateSchema, migrationId);
  return fromJson(row.backfill_overrides);
}

/**
 * Changes knobs of a migration's backfill (running or not): merged into what is stored, recorded as an event,
 * announced at commit. Returns the knobs now in force.
 */
export async function setBackfillKnobs(
  ctx: ExecutorContext,
  migrationId: string,
  patch: BackfillKnobsPatch,
): Promise<BackfillKnobs> {
  const issues = patchIssues(patch);
  if (issues.length > 0) {
    throw new ValidationError(
      'PF_INVALID_OPTIONS',
      `Invalid backfill knobs for "${migrationId}": ${issues.join('; ')}.`,
      {
        value: patch,
        migrationId,
        hint: "batchSize is an integer 1..1000000, pauseMs an integer 0..600000 (ms), throttle a boolean; null returns a knob to the migration's setting.",
      },
    );
  }
  // jsonb_strip_nulls drops the knobs set to null: they fall back to the migration's settings.
  const json = JSON.stringify(Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
  const s = ctx.stateSchema;
  return ctx.knex.transaction(async (trx) => {
    const row = (
      await trx.raw(
        'UPDATE ??.migrations SET backfill_overrides = jsonb_strip_nulls(backfill_overrides || ?::jsonb), updated_at = now() WHERE id = ? RETURNING backfill_overrides',
        [s, json, migrationId],
      )
    ).rows[0] as { backfill_overrides: unknown } | undefined;
    if (!row) throw unknownMigration(s, migrationId);
    const knobs = fromJson(row.backfill_overrides);
    await trx.raw(
      'INSERT INTO ??.events (migration_id, kind, action, actor, reason, detail) VALUES (?, ?, ?, ?, ?, ?::jsonb)',
      [
        s,
        migrationId,
        'backfill',
        'set-knobs',
        ctx.actor,
        `backfill knobs ${json}`,
        JSON.stringify({ patch: JSON.parse(json), knobs }),
      ],
    );
    await trx.raw('SELECT pg_notify(?, ?)', [knobsChannel(s), JSON.stringify({ id: migrationId, knobs })]);
    return knobs;
  });
}

/**
 * The knobs as a running backfill sees them: read once at start, then kept current by the notifications on the
 * runner's own lock connection (a dedicated session, so none is lost while the run lives). `refresh()` re-reads
 * them, for the moments the runner waits on an operator's throttle.
 */
export class LiveKnobs {
  private value: BackfillKnobs = NO_KNOBS;
  private readonly onNotification = (msg: { channel: string; payload?: string }) => {
    if (msg.channel !== knobsChannel(this.stateSchema) || !msg.payload) return;
    try {
      const p = JSON.parse(msg.payload) as { id?: string; knobs?: unknown };
      if (p.id === this.migrationId) this.apply(fromJson(p.knobs));
    } catch {
      void this.refresh().catch(() => undefined);
    }
  };

  constructor(
    private readonly session: Session,
    private readonly stateSchema: string,
    private readonly migrationId: string,
    private readonly onChange: (knobs: BackfillKnobs) => void = () => undefined,
  ) {}

  get current(): BackfillKnobs {
    return this.value;
  }

  async start(): Promise<void> {
    this.session.onNotification(this.onNotification);
    await this.session.query(`LISTEN "${knobsChannel(this.stateSchema).replace(/"/g, '""')}"`);
    await this.refresh();
  }

  async refresh(): Promise<BackfillKnobs> {
    const row = await this.session.one<{ backfill_overrides: unknown }>(
      `SELECT backfill_overrides FROM "${this.stateSchema.replace(/"/g, '""')}".migrations WHERE id = $1`,
      [this.migrationId],
    );
    this.apply(fromJson(row?.backfill_overrides));
    return this.value;
  }

  /** Stops listening; the session goes back to the pool clean. */
  async stop(): Promise<void> {
    this.session.offNotification(this.onNotification);
    await this.session.query('UNLISTEN *').catch(() => undefined);
  }

  private apply(next: BackfillKnobs): void {
    const prev = this.value;
    this.value = next;
    if (prev.batchSize !== next.batchSize || prev.throttle !== next.throttle || prev.pauseMs !== next.pauseMs)
      this.onChange(next);
  }
}

function unknownMigration(stateSchema: string, migrationId: string): StateError {
  return new StateError(
    'PF_UNKNOWN_MIGRATION',
    `Migration "${migrationId}" is not recorded in ${stateSchema}.migrations.`,
    {
      value: migrationId,
      migrationId,
      hint: 'Check the migration id; the backfill knobs of a migration exist once it has been registered (expand, or phaseflag status).',
    },
  );
}
