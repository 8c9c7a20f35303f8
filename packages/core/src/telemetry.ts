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
} as const;

export const METRIC = {
  rowsBackfilled: 'phaseflag.backfill.rows',
  batchDuration: 'phaseflag.backfill.batch.duration',
  lockWait: 'phaseflag.ddl.lock_wait',
  ddlRetries: 'phaseflag.ddl.retries',
  transitions: 'phaseflag.transitions',
  refusals: 'phaseflag.transitions.refused',
  throttleWait: 'phaseflag.backfill.throttle.duration',
  rowsRepaired: 'phaseflag.repair.rows',
  /** Gauge: rows recorded as not derivable by the backfill expression (they block verified), per migration. */
  underivableRows: 'phaseflag.underivable.rows',
  /** Counter: rows phaseflag's preflight, backfill and verify recorded as not derivable (by source). */
  underivableRecorded: 'phaseflag.underivable.recorded',
} as const;
