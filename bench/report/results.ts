/** The figures of one benchmark run, as run.ts collects them and saves them (--json) for the report to render. */
import type { BackfillCase, BackfillRun, Method } from '../cases/backfill.js';
import type { BatchDiagnosis } from '../cases/diagnose.js';
import type { ExpandRun } from '../cases/expand-lock.js';
import type { FleetCase } from '../cases/fleet.js';
import type { LintCase } from '../cases/lint.js';
import type { PeersCase } from '../cases/peers.js';
import type { PropagationCase } from '../cases/propagation.js';
import type { RouterOverhead } from '../cases/router-overhead.js';
import type { TrafficRun } from '../cases/traffic.js';
import type { WriteAmplificationCase } from '../cases/write-amplification.js';
import type { MachineFacts, PostgresFacts } from '../lib/machine.js';
import type { ChangeKind } from '../lib/orders.js';

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
  fleet?: FleetCase;
  /** Case 11: phaseflag beside pgroll's and reshape's backfills (reproduced) in the same run. */
  peers?: PeersCase;
  /** Case 10; rendered to its own file, LINT-RESULTS.md. */
  lint?: LintCase;
  errors: { case: string; message: string }[];
  /** Set when the report was re-rendered from saved figures (run.ts --render). */
  renderedAt?: string;
}

/** One run of the backfill case: a method, on a change, at a table size. */
export function runOf(b: BackfillCase, method: Method, change: ChangeKind, rows: number): BackfillRun | undefined {
  return b.runs.find((x) => x.method === method && x.change === change && x.rows === rows);
}
