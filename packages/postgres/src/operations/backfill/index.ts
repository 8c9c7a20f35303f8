export { prepareBackfill, resetBackfill } from './ranges.js';
export { runBackfill } from './runner.js';
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
