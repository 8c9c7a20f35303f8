import { resolveDatabase, type ResolvedDatabase } from './database/resolve-database.js';

let held: ResolvedDatabase | undefined;

// The suites share one database, each with a state schema of its own: a DDL watch per suite would fire on every
// suite's DDL (and outlive a suite killed before its cleanup). Suites that test the watch ask for it
// (`watchDdl: true`); processes the suites start inherit this.
process.env.PHASEFLAG_WATCH_DDL ??= 'off';

/**
 * Mocha root hooks that hold the database for the whole run. An embedded server stops when its last holder
 * releases, so without a run-wide holder every suite's `cleanup()` stops it and the next suite pays another
 * start (~1 s). Enable with `"require": ["@phaseflag/testkit"]` in `.mocharc.json`; harmless with a local server.
 */
export const mochaHooks = {
  async beforeAll(): Promise<void> {
    held ??= await resolveDatabase();
  },
  async afterAll(): Promise<void> {
    const releasing = held;
    held = undefined;
    await releasing?.release();
  },
};
