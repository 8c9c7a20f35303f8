import { ValidationError, type Clock, type Logger, type ThrottleSettings } from '@phaseflag/core';
import type { LiveKnobs } from './knobs.js';
import type { Session } from '../../driver/session.js';
import { THROTTLE_STATEMENT_TIMEOUT_MS } from '../../catalog/throttle-query.js';
import { ThrottleQuery } from './throttle-query.js';
import type { Knex } from 'knex';

/**
 * Replica lag as the primary sees it. Only physical standbys that stream or catch up count: a logical consumer
 * (a CDC tool) lagging is not a reason to slow the backfill, and a base backup's walsender has no replay.
 * pg_wal_lsn_diff gives bytes of WAL not yet replayed, which keeps growing while replay is paused or stuck;
 * replay_lag is a time and goes NULL when the standby is idle, so bytes are the firmer signal.
 */
const REPLICA_LAG_SQL = `
  SELECT count(*)::int AS replicas,
         count(*) FILTER (WHERE r.state IS NULL)::int AS hidden,
         max(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn))::float8 AS lag_bytes,
         max(extract(epoch FROM r.replay_lag) * 1000)::float8 AS lag_ms,
         (array_agg(coalesce(r.application_name, r.client_addr::text, r.pid::text)
                    ORDER BY pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) DESC NULLS LAST))[1] AS worst
    FROM pg_stat_replication r
   WHERE (r.state IS NULL OR r.state IN ('streaming', 'catchup'))
     AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical')`;

export interface ThrottleCheck {
  readonly throttled: boolean;
  readonly reason: string | null;
}

/**
 * Holds workers back while a replica lags or the user's throttle query says so (gh-ost's --max-lag-millis and
 * --throttle-query). One instance serves all workers of a run: concurrent checks share one query on the run's
 * own connection (the user's query on one more, see throttle-query.ts), and the start and the end of a throttled stretch are logged once, not once per worker.
 */
export class Throttler {
  readonly enabled: boolean;
  private inFlight: Promise<ThrottleCheck> | null = null;
  private throttledSince: number | null = null;
  private warnedHidden = false;

  /** The user's throttle query, on a connection of its own (see throttle-query.ts); null without one. */
  private readonly throttleQuery: ThrottleQuery | null;

  constructor(
    private readonly session: Session,
    private readonly settings: ThrottleSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly migrationId: string,
    private readonly onChange: (throttled: boolean, reason: string | null) => void = () => undefined,
    /** The operator's throttle knob (phaseflag backfill --set throttle=on, or `t` on its terminal). */
    private readonly knobs: LiveKnobs | undefined,
    private readonly knex: Knex,
  ) {
    this.enabled = settings.maxReplicaLagBytes !== null || settings.maxReplicaLagMs !== null || settings.query !== null;
    this.throttleQuery = settings.query === null ? null : new ThrottleQuery(knex, settings.query, migrationId);
  }

  /** Closes the throttle query's connection. */
  async close(): Promise<void> {
    await this.throttleQuery?.close();
  }

  get isThrottled(): boolean {
    return this.throttledSince !== null;
  }

  /**
   * Waits until nothing asks to hold back (or the signal aborts); returns the milliseconds spent held back, 0 when
   * the first check was clear (the check itself is not throttling).
   */
  async wait(signal: AbortSignal): Promise<number> {
    if (!this.enabled && this.knobs?.current.throttle !== true) return 0;
    const started = this.clock.now();
    let held = false;
    for (;;) {
      if (signal.aborted) break;
      const check = await this.check();
      if (!check.throttled) break;
      held = true;
      await this.clock.sleep(this.settings.checkIntervalMs, signal);
    }
    return held ? Math.max(1, this.clock.now() - started) : 0;
  }

  private check(): Promise<ThrottleCheck> {
    this.inFlight ??= this.query()
      .then((c) => {
        this.record(c);
        return c;
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private record(c: ThrottleCheck): void {
    const now = this.clock.now();
    if (c.throttled && this.throttledSince === null) {
      this.throttledSince = now;
      this.logger.info(`backfill throttled: ${c.reason}`, { migrationId: this.migrationId, reason: c.reason });
      this.onChange(true, c.reason);
    } else if (!c.throttled && this.throttledSince !== null) {
      const ms = now - this.throttledSince;
      this.throttledSince = null;
      this.logger.info(`backfill no longer throttled after ${ms} ms`, {
        migrationId: this.migrationId,
        throttledMs: ms,
      });
      this.onChange(false, null);
    }
  }

  private async query(): Promise<ThrottleCheck> {
    const { maxReplicaLagBytes, maxReplicaLagMs, query } = this.settings;
    // Re-read while held: the notification that lifts it normally arrives first, this is the backstop.
    if (this.knobs?.current.throttle && (await this.knobs.refresh()).throttle) {
      return { throttled: true, reason: 'throttled by the operator' };
    }
    if (maxReplicaLagBytes !== null || maxReplicaLagMs !== null) {
      const lag = await this.session.one<{
        replicas: number;
        hidden: number;
        lag_bytes: number | null;
        lag_ms: number | null;
        worst: string | null;
      }>(REPLICA_LAG_SQL);
      if (lag && lag.hidden > 0 && !this.warnedHidden) {
        this.warnedHidden = true;
        this.logger.warn('backfill cannot see replica lag: pg_stat_replication hides its columns from this role', {
          migrationId: this.migrationId,
          hint: 'GRANT pg_monitor (or pg_read_all_stats) to the role that runs the backfill.',
        });
      }
      if (lag && maxReplicaLagBytes !== null && lag.lag_bytes !== null && lag.lag_bytes > maxReplicaLagBytes) {
        return {
          throttled: true,
          reason: `replica ${lag.worst} is ${Math.round(lag.lag_bytes)} bytes behind (max ${maxReplicaLagBytes})`,
        };
      }
      if (lag && maxReplicaLagMs !== null && lag.lag_ms !== null && lag.lag_ms > maxReplicaLagMs) {
        return {
          throttled: true,
          reason: `replica ${lag.worst} replays ${Math.round(lag.lag_ms)} ms behind (max ${maxReplicaLagMs})`,
        };
      }
    }
    if (this.throttleQuery !== null) {
      let holdBack: boolean;
      try {
        holdBack = await this.throttleQuery.holdBack();
      } catch (error) {
        throw new ValidationError('PF_INVALID_OPTIONS', `The throttle query failed: ${(error as Error).message}.`, {
          value: query,
          migrationId: this.migrationId,
          cause: error,
          hint: `Give one read-only SELECT that returns one row with one boolean column, true meaning "hold back now", within ${THROTTLE_STATEMENT_TIMEOUT_MS} ms.`,
        });
      }
      if (holdBack) return { throttled: true, reason: 'the throttle query returned true' };
    }
    return { throttled: false, reason: null };
  }
}
