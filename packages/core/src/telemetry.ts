import type { FlagState } from './flags.js';

/** Names shared by every package, so spans and metrics read the same in any trace viewer. */
export const TRACER_NAME = '@phaseflag';

export const SPAN = {
  transition: 'phaseflag.transition',
  refused: 'phaseflag.transition.refused',
  ddl: 'phaseflag.ddl',
  backfill: 'phaseflag.backfill',
  backfillBatch: 'phaseflag.backfill.batch',
  verify: 'phaseflag.verify',
  verifyBatch: 'phaseflag.verify.batch',
  plan: 'phaseflag.plan',
  /** A controller releases the hold `readOld()` placed on reads (the read-new flag was seen off). */
  readsRelease: 'phaseflag.reads.release',
  repair: 'phaseflag.repair',
} as const;

export const ATTR = {
  migrationId: 'phaseflag.migration.id',
  table: 'phaseflag.table',
  action: 'phaseflag.action',
  fromPhase: 'phaseflag.phase.from',
  toPhase: 'phaseflag.phase.to',
  reason: 'phaseflag.reason',
  actor: 'phaseflag.actor',
  rows: 'phaseflag.rows',
  batchSize: 'phaseflag.batch.size',
  worker: 'phaseflag.worker',
  keyFrom: 'phaseflag.key.from',
  keyTo: 'phaseflag.key.to',
  lockWaitMs: 'phaseflag.lock.wait_ms',
  lockMode: 'phaseflag.lock.mode',
  attempts: 'phaseflag.retry.attempts',
  statement: 'db.statement',
  dbSystem: 'db.system',
  mismatches: 'phaseflag.verify.mismatches',
  throttled: 'phaseflag.throttled',
  throttledMs: 'phaseflag.throttle.wait_ms',
  rowsRepaired: 'phaseflag.rows.repaired',
  /** Who found a row the backfill expression cannot derive: trigger, preflight, backfill or verify. */
  source: 'phaseflag.underivable.source',
  /** The primary's WAL position recorded with the verify transition: a replica that replayed past it has the verified data. */
  verifiedLsn: 'phaseflag.verified_lsn',
  /** A replica's last replayed WAL position (pg_last_wal_replay_lsn), where a router compared it. */
  replayLsn: 'phaseflag.replica.replay_lsn',
  /** Shadow reads: rows one read compared, of them mismatched, and the mismatches' keys (JSON, at most 10). */
  shadowCompared: 'phaseflag.shadow.compared',
  shadowMismatched: 'phaseflag.shadow.mismatched',
  shadowMismatchKeys: 'phaseflag.shadow.mismatch_keys',
} as const;

/** The span event a shadow read adds to the span active when its rows arrive (the application's read). */
export const SHADOW_EVENT = 'phaseflag.shadow.compare';

export const METRIC = {
  rowsBackfilled: 'phaseflag.backfill.rows',
  batchDuration: 'phaseflag.backfill.batch.duration',
  lockWait: 'phaseflag.ddl.lock_wait',
  ddlRetries: 'phaseflag.ddl.retries',
  transitions: 'phaseflag.transitions',
  refusals: 'phaseflag.transitions.refused',
  throttleWait: 'phaseflag.backfill.throttle.duration',
  /**
   * Counter: times a backfill yielded to the application (throttle.yieldToApplication, throttle.maxLoad), by
   * `phaseflag.reason`: `lock_wait` (an application statement waited on a batch's rows) or `load`.
   */
  backfillYields: 'phaseflag.backfill.yields',
  rowsRepaired: 'phaseflag.repair.rows',
  /** Gauge: rows recorded as not derivable by the backfill expression (they block verified), per migration. */
  underivableRows: 'phaseflag.underivable.rows',
  /** Counter: rows phaseflag's preflight, backfill and verify recorded as not derivable (by source). */
  underivableRecorded: 'phaseflag.underivable.recorded',
  /**
   * Counter: times a router that reads from a replica started holding its reads on the old column because the
   * replica had not replayed the verified data (or could not be asked), per migration.
   */
  replicaLagHold: 'phaseflag.router.replica_lag_hold',
  /** Counter: rows shadow reads compared (new column against the backfill expression over the old), per migration. */
  shadowCompared: 'phaseflag.shadow.compared',
  /** Counter: compared rows whose new column differed, per migration. */
  shadowMismatched: 'phaseflag.shadow.mismatched',
} as const;

/** OpenTelemetry feature-flag semantic-convention attributes for a flag as a whole (no request context). */
export const FEATURE_FLAG_ATTR = {
  key: 'feature_flag.key',
  value: 'feature_flag.result.value',
  reason: 'feature_flag.result.reason',
  provider: 'feature_flag.provider.name',
  contextId: 'feature_flag.context.id',
  version: 'feature_flag.version',
  error: 'feature_flag.error.message',
} as const;

export function featureFlagAttributes(
  key: string,
  state: FlagState | undefined,
  provider: string,
): Record<string, string | boolean> {
  const attrs: Record<string, string | boolean> = {
    [FEATURE_FLAG_ATTR.key]: key,
    [FEATURE_FLAG_ATTR.provider]: provider,
  };
  if (state === undefined) {
    attrs[FEATURE_FLAG_ATTR.error] = 'flag state unknown (source not ready, unreachable, or no such flag)';
    return attrs;
  }
  attrs[FEATURE_FLAG_ATTR.value] = state.enabled;
  // The flag as a whole: off in its environment, on for everyone, or on for a share of requests.
  attrs[FEATURE_FLAG_ATTR.reason] = !state.enabled ? 'disabled' : state.fullyOn ? 'static' : 'split';
  if (state.version !== undefined) attrs[FEATURE_FLAG_ATTR.version] = state.version;
  return attrs;
}

/** Spans the controller adds to the engine's (core's SPAN holds the engine's own). */
export const CONTROLLER_SPAN = {
  /** A short span when the controller sees a phase flag change (first sight included); transitions link to it. */
  flagChange: 'phaseflag.flag.change',
  /** Open while this controller leads a migration; every transition it makes links to it. */
  leader: 'phaseflag.controller.leader',
} as const;

export const CONTROLLER_ATTR = {
  instanceId: 'phaseflag.controller.instance_id',
  flagRole: 'phaseflag.flag.role',
  fullyOn: 'phaseflag.flag.fully_on',
  refusalCode: 'phaseflag.refusal.code',
  cause: 'phaseflag.cause',
} as const;
