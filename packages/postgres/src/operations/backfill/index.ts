export { prepareBackfill, resetBackfill } from './ranges.js';
export { runBackfill, DEFAULT_RECONNECT_MS } from './resume.js';
export { backfillProgress } from './progress.js';
export { BACKFILL_ATTR } from './run-shared.js';
export type {
  BackfillRunOptions,
  BackfillPlanInfo,
  BackfillProgress,
  BackfillRange,
  BackfillResult,
  BackfillStop,
} from './types.js';
