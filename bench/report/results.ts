/** The figures of one benchmark run, as run.ts collects them and saves them (--json) for the report to render. */
import type { BackfillCase } from '../cases/backfill.js';
import type { BatchDiagnosis } from '../cases/diagnose.js';
import type { ExpandRun } from '../cases/expand-lock.js';
import type { PropagationCase } from '../cases/propagation.js';
import type { RouterOverhead } from '../cases/router-overhead.js';
import type { TrafficRun } from '../cases/traffic.js';
import type { WriteAmplificationCase } from '../cases/write-amplification.js';
import type { MachineFacts, PostgresFacts } from '../lib/machine.js';

export interface BenchResults {
  command: string;
  quick: boolean;
  startedAt: string;
  durationSeconds: number;
  machine: MachineFacts;
  postgres: PostgresFacts;
  databaseKind: string;
  sizes: number[];
  workers: number;
  offsetCapSeconds: number;
  backfill?: BackfillCase;
  diagnosis?: BatchDiagnosis[];
  writeAmplification?: WriteAmplificationCase;
  traffic?: TrafficRun[];
  expand?: ExpandRun[];
  router?: RouterOverhead;
  propagation?: PropagationCase;
  errors: { case: string; message: string }[];
  /** Set when the report was re-rendered from saved figures (run.ts --render). */
  renderedAt?: string;
}
