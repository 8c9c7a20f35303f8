import assert from 'node:assert/strict';
import { Phaseflag } from '@phaseflag/postgres';
import { createAmountTable, createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { recordFinding, reliabilitySize } from './record.js';
import { databaseSnapshot } from './support/hostile-snapshot.js';
import { amountConfig, CliDir } from './support/scan-cli.js';

/**
 * Hostile arguments, ids and config files to the real `phaseflag` binary: each refused with its stable code (the
 * `--json` error document) and exit 2, the suite's schemas byte-identical before and after.
 */
describe('reliability: hostile arguments to the phaseflag CLI change nothing', function () {
  let suite: Suite;
  let cli: CliDir;
  let pf: Phaseflag;

  before(async () => {
    suite = await createSuiteSchema('rel_hostile_cli');
    await createAmountTable(suite.knex, 'orders', 100);
    pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
    await pf.install();
    await pf.close();
    cli = new CliDir({ DATABASE_URL: suite.databaseUrl, PHASEFLAG_STATE_SCHEMA: suite.stateSchema });
    cli.write('phaseflag.config.ts', amountConfig(suite.schema, 'rel-cli'));
    cli.write('empty.config.ts', 'export default { migrations: [] };\n');
    cli.write('unknown-key.config.ts', "export default { migrations: [{ id: 'x' }], database: { password: 'x' } };\n");
    cli.write('broken.config.ts', 'export default { migrations: [ ;\n');
    cli.write(
      'hostile-table.config.ts',
      amountConfig(suite.schema, 'rel-cli').replace(`${suite.schema}.orders`, '.orders'),
    );
    cli.write(
      'nul-column.config.ts',
      amountConfig(suite.schema, 'rel-cli')
        .replace('amountInput(', '{ ...amountInput(')
        .replace('.orders")', '.orders"), oldColumn: "a\\u0000b" }'),
    );
  });

  after(async () => {
    cli?.remove();
    await suite?.cleanup();
  });

  const long = 's'.repeat(64);
  const cases: Array<[string, string[], string]> = [
    ['an unknown migration id', ['plan', 'no-such-migration'], 'PF_UNKNOWN_MIGRATION'],
    ['`x; DROP TABLE y` as the id', ['expand', 'x; DROP TABLE y'], 'PF_UNKNOWN_MIGRATION'],
    ['an empty id', ['expand', ''], 'PF_UNKNOWN_MIGRATION'],
    ['a 64-byte state schema', ['--state-schema', long, 'expand', 'rel-cli'], 'PF_INVALID_IDENTIFIER'],
    ['an empty state schema', ['--state-schema', '', 'expand', 'rel-cli'], 'PF_INVALID_IDENTIFIER'],
    ['a negative verify batch size', ['verify', 'rel-cli', '--batch-size', '-5'], 'PF_USAGE_BAD_OPTION'],
    ['a NaN verify batch size', ['verify', 'rel-cli', '--batch-size', 'NaN'], 'PF_USAGE_BAD_OPTION'],
    ['a huge verify batch size', ['verify', 'rel-cli', '--batch-size', '1e30'], 'PF_USAGE_BAD_OPTION'],
    ['a non-numeric run interval', ['run', 'rel-cli', '--interval', 'abc'], 'PF_USAGE_BAD_OPTION'],
    ['a negative run timeout', ['run', 'rel-cli', '--timeout', '-1'], 'PF_USAGE_BAD_OPTION'],
    ['an unknown backfill knob', ['backfill', 'rel-cli', '--set', 'drop-table=on'], 'PF_USAGE_BAD_KNOB'],
    ['a NaN backfill knob', ['backfill', 'rel-cli', '--set', 'batch-size=NaN'], 'PF_USAGE_BAD_KNOB'],
    ['a missing config file', ['--config', 'missing.config.ts', 'expand', 'rel-cli'], 'PF_CONFIG_NOT_FOUND'],
    ['a config without migrations', ['--config', 'empty.config.ts', 'expand', 'rel-cli'], 'PF_CONFIG_INVALID'],
    ['a config with an unknown key', ['--config', 'unknown-key.config.ts', 'expand', 'x'], 'PF_CONFIG_INVALID'],
    ['a config that does not parse', ['--config', 'broken.config.ts', 'expand', 'rel-cli'], 'PF_CONFIG_INVALID'],
    ['an empty schema in the table', ['--config', 'hostile-table.config.ts', 'expand', 'rel-cli'], 'PF_CONFIG_INVALID'],
    ['a NUL in the old column', ['--config', 'nul-column.config.ts', 'expand', 'rel-cli'], 'PF_CONFIG_INVALID'],
  ];

  /** Runs each case: the code and exit it is refused with, and the schemas after it against before it. */
  async function attempt(list: Array<[string, string[], string]>): Promise<void> {
    const snapshot = () => databaseSnapshot(suite.knex, suite.databaseUrl, [suite.schema, suite.stateSchema]);
    let before = await snapshot();
    const wrong: string[] = [];
    const changed: string[] = [];
    for (const [what, args, code] of list) {
      const r = await cli.run(['--json', ...args]);
      if (r.code !== code || r.exit !== 2)
        wrong.push(`${what}: expected ${code} (exit 2), got ${r.code} (exit ${r.exit}): ${r.stderr.slice(0, 300)}`);
      const after = await snapshot();
      if (after !== before) changed.push(what);
      before = after;
    }
    assert.deepEqual(wrong, [], 'each refused with its stable code');
    assert.deepEqual(changed, [], 'the database is byte-identical after each');
  }

  it('refuses each with its code and exit 2, and leaves the database byte-identical', async () => {
    // Each CLI run costs a Node start and a config load: the short form runs every other case, the long form all.
    const chosen = reliabilitySize() === 'long' ? cases : cases.filter((_, i) => i % 2 === 0);
    await attempt(chosen);
    recordFinding({
      section: 'Hostile input',
      line: `${chosen.length} hostile CLI arguments, ids and config files to the real phaseflag binary: each refused with its stable code and exit 2; schema dump and row checksums byte-identical after every one: 0 rows lost, 0 wrong rows`,
      figures: { cases: chosen.length, changed: 0 },
    });
  });

  it('refuses unknown flags and commands with PF_USAGE_BAD_OPTION in the --json error document', async () => {
    // Today commander prints its own `error: unknown option` text and exits 2, with no code and no JSON.
    const unknown: Array<[string, string[], string]> = [
      ['an unknown flag', ['--drop-everything', 'status'], 'PF_USAGE_BAD_OPTION'],
      ['an unknown command', ['drop', 'rel-cli'], 'PF_USAGE_BAD_OPTION'],
      ['an unknown option of a command', ['expand', 'rel-cli', '--force-everything'], 'PF_USAGE_BAD_OPTION'],
    ];
    await attempt(unknown);
    recordFinding({
      section: 'Hostile input',
      line: `${unknown.length} unknown CLI flags and commands: each refused with PF_USAGE_BAD_OPTION and exit 2, the database byte-identical: 0 rows lost, 0 wrong rows`,
      figures: { cases: unknown.length },
    });
  });
});
