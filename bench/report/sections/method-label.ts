/** How the report names each backfill method, in the backfill, memory and traffic sections. */
import type { Method } from '../../cases/backfill.js';
import { GENTLE_BATCH, YIELD_SETTING, type TrafficMethod } from '../../cases/traffic.js';

export const METHOD_LABEL: Record<Method | TrafficMethod, string> = {
  'single-update': 'one `UPDATE t SET new = expr`',
  'phaseflag-1': 'phaseflag, 1 worker (defaults)',
  'phaseflag-n': 'phaseflag, parallel workers',
  'phaseflag-gentle': `phaseflag, 1 worker, targetBatchMs ${GENTLE_BATCH.targetBatchMs}, pauseMs ${GENTLE_BATCH.pauseMs}`,
  'phaseflag-yield': `phaseflag, 1 worker, targetBatchMs ${YIELD_SETTING.batch.targetBatchMs}, pauseMs ${YIELD_SETTING.batch.pauseMs}, throttle.yieldToApplication`,
  'offset-loop': 'LIMIT/OFFSET loop (knex, 1000 rows)',
};
