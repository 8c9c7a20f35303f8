import fc from 'fast-check';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { recordFinding, scaled } from './record.js';
import { runCaseArb } from './support/prop-ops.js';
import { PropHarness } from './support/prop-run.js';

/**
 * Property: whatever order two service instances' writes (old column only, new column only, another column, the
 * key, deletes), backfill batches of 1–5 rows, deliveries of the phase to each instance and phase transitions come
 * in, verify is clean, every row's new column is its old column's derivation, no row is lost, and each instance
 * reads the right values at the phase it applies. Replay a counterexample with PHASEFLAG_PROP_SEED and
 * PHASEFLAG_PROP_PATH (fast-check prints both).
 */
describe('reliability: property-based interleavings of writes, backfill batches and phase changes', function () {
  let suite: Suite;
  let harness: PropHarness;

  before(async () => {
    suite = await createSuiteSchema('rel_props', { pool: { min: 0, max: 4 } });
    harness = new PropHarness(suite);
    await harness.install();
  });

  after(async () => {
    await harness?.close();
    await suite?.cleanup();
  });

  it('keeps every row and derives it right through the whole rollout', async () => {
    const numRuns = scaled(60, 1000);
    const seed = process.env.PHASEFLAG_PROP_SEED;
    const path = process.env.PHASEFLAG_PROP_PATH;
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(runCaseArb, (c) => harness.run(c)),
      {
        numRuns,
        endOnFailure: false,
        verbose: 1,
        ...(seed === undefined ? {} : { seed: Number(seed) }),
        ...(path === undefined ? {} : { path }),
      },
    );
    const t = harness.totals;
    recordFinding({
      section: 'Property-based interleavings',
      line:
        `${t.runs} runs of ${t.ops} interleaved operations from two service instances ` +
        `(inserts, updates of the old, new, another column and the key, deletes), ${t.batches} backfill batches of 1–5 rows, ` +
        `phase deliveries and transitions through contract: ${t.verifies} verifies clean, ${t.rowsChecked} rows checked, 0 rows lost, 0 wrong rows ` +
        `(${Math.round((Date.now() - started) / 1000)} s)`,
      figures: { runs: t.runs, ops: t.ops, batches: t.batches, verifies: t.verifies, rowsChecked: t.rowsChecked },
    });
  });
});
