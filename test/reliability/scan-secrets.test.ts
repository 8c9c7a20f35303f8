import assert from 'node:assert/strict';
import { defineMigration } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { provisionFlags, UnleashFlagSource } from '@phaseflag/unleash';
import {
  amountInput,
  captureSpans,
  createAmountTable,
  createSuiteSchema,
  startUnleash,
  type Suite,
  type UnleashServer,
} from '@phaseflag/testkit';
import knex from 'knex';
import { recordFinding, reliabilitySize } from './record.js';
import { amountConfig, CliDir } from './support/scan-cli.js';
import { SecretScan } from './support/scan-secrets.js';

const DB_PW = 'S3cr3t-pw';
const UNLEASH_PW = 'Unl3ash-pw';
const WRONG_ADMIN = '*:*.wrong-admin-7f3a9c1e5b2d';
const WRONG_CLIENT = 'default:development.wrong-client-4d8e2b6a9c';
const ID = 'rel-scan';
const SHORT_RUNS = new Set([
  'database refused, verbose',
  'unknown role',
  '--database-url with a password',
  'status --json, wrong client token',
  'status, plain URL, wrong client token',
  'provision, plain URL, wrong admin token',
  'provision, unreachable Unleash',
  'provision, token as a flag',
]);

/**
 * The CLI's and the library's error paths, given a database URL with a password and an Unleash URL with a
 * password plus admin and client tokens (a real in-process unleash-server, wrong tokens, unreachable addresses):
 * no stdout, stderr, error message, log line or span attribute contains a password or a token.
 */
describe('reliability: no secret in any output', function () {
  const spans = captureSpans();
  let suite: Suite;
  let unleash: UnleashServer;
  let cli: CliDir;
  let scan: SecretScan;

  before(async () => {
    suite = await createSuiteSchema('rel_scan');
    await createAmountTable(suite.knex, 'orders', 100);
    const pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
    await pf.install();
    await pf.close();
    unleash = await startUnleash();
    const secret = (token: string) => token.slice(token.indexOf('.') + 1);
    scan = new SecretScan([
      DB_PW,
      UNLEASH_PW,
      WRONG_ADMIN,
      WRONG_CLIENT,
      secret(WRONG_ADMIN),
      secret(WRONG_CLIENT),
      secret(unleash.adminToken),
      secret(unleash.clientToken),
    ]);
    cli = new CliDir({ PHASEFLAG_STATE_SCHEMA: suite.stateSchema });
    cli.write('phaseflag.config.ts', amountConfig(suite.schema, ID));
  });

  after(async () => {
    cli?.remove();
    await unleash?.stop();
    await suite?.cleanup();
  });

  /** The suite's database under `user` with the password: connects when the role exists (trust auth). */
  const dbUrl = (user: string, port?: number) => {
    const u = new URL(suite.databaseUrl);
    u.username = user;
    u.password = DB_PW;
    if (port !== undefined) u.port = String(port);
    return u.toString();
  };
  const unleashUrl = (port: number) => `http://admin:${UNLEASH_PW}@127.0.0.1:${port}`;

  it('prints no password or token from the CLI', async () => {
    const realUser = new URL(suite.databaseUrl).username || 'postgres';
    const env = (db: string, url?: string, client?: string, admin?: string) => ({
      DATABASE_URL: db,
      UNLEASH_URL: url,
      UNLEASH_API_TOKEN: client,
      UNLEASH_ADMIN_TOKEN: admin,
    });
    const runs: Array<[string, string[], Record<string, string | undefined>]> = [
      ['database refused', ['status', ID], env(dbUrl(realUser, 1))],
      ['database refused, verbose', ['-v', 'expand', ID], env(dbUrl(realUser, 1))],
      ['unknown role', ['--json', 'expand', ID], env(dbUrl('no_such_role_scan'))],
      ['unknown role, verbose', ['-v', 'plan', ID], env(dbUrl('no_such_role_scan'))],
      ['--database-url with a password', ['--json', '--database-url', dbUrl(realUser, 1), 'status', ID], {}],
      ['status, wrong client token', ['status', ID], env(dbUrl(realUser), unleashUrl(unleash.port), WRONG_CLIENT)],
      [
        'status --json, wrong client token',
        ['--json', 'status', ID, '--wait-flags', '1500'],
        env(dbUrl(realUser), unleashUrl(unleash.port), WRONG_CLIENT),
      ],
      [
        'status, unreachable Unleash',
        ['-v', 'status', ID, '--wait-flags', '1000'],
        env(dbUrl(realUser), unleashUrl(1), unleash.clientToken),
      ],
      [
        'status, real tokens',
        ['--json', 'status', ID],
        env(dbUrl(realUser), unleashUrl(unleash.port), unleash.clientToken),
      ],
      [
        'provision, plain URL, wrong admin token',
        ['--json', 'provision', ID],
        env(dbUrl(realUser), unleash.url, undefined, WRONG_ADMIN),
      ],
      [
        'status, plain URL, wrong client token',
        ['-v', 'status', ID, '--wait-flags', '1500'],
        env(dbUrl(realUser), unleash.url, WRONG_CLIENT),
      ],
      [
        'provision, wrong admin token',
        ['provision', ID],
        env(dbUrl(realUser), unleashUrl(unleash.port), undefined, WRONG_ADMIN),
      ],
      [
        'provision --json, wrong admin token',
        ['--json', 'provision', ID],
        env(dbUrl(realUser), unleashUrl(unleash.port), undefined, WRONG_ADMIN),
      ],
      [
        'provision, unreachable Unleash',
        ['-v', 'provision', ID],
        env(dbUrl(realUser), unleashUrl(1), undefined, unleash.adminToken),
      ],
      [
        'provision, token as a flag',
        ['--json', '--unleash-admin-token', WRONG_ADMIN, '--unleash-url', unleashUrl(unleash.port), 'provision', ID],
        env(dbUrl(realUser)),
      ],
      [
        'run, wrong client token',
        ['-v', 'run', ID, '--timeout', '2'],
        env(dbUrl(realUser), unleashUrl(unleash.port), WRONG_CLIENT),
      ],
    ];
    // The short form runs one of each kind of path; the long form all of them.
    const chosen = reliabilitySize() === 'long' ? runs : runs.filter(([label]) => SHORT_RUNS.has(label));
    for (const [label, args, e] of chosen) {
      const r = await cli.run(args, e, 60_000);
      assert.notEqual(r.exit, null, `${label} ends by itself`);
      scan.add(`cli ${label} stdout`, r.stdout);
      scan.add(`cli ${label} stderr`, r.stderr);
    }
    assert.deepEqual(scan.leaks(), [], 'no secret in the CLI output');
    recordFinding({
      section: 'Secrets in output',
      line: `${chosen.length} CLI runs (database refused or unknown role, Unleash with wrong or real tokens, unreachable, verbose and --json) with passwords in both URLs and tokens in env and flags: no password or token in any stdout or stderr`,
      figures: { runs: chosen.length, texts: scan.texts.length },
    });
  });

  it('puts no password or token in library errors, log lines or spans', async () => {
    const library = new SecretScan(scan.secrets);
    const migration = defineMigration(amountInput(ID, `${suite.schema}.orders`));
    const tries: Array<[string, () => Promise<unknown>]> = [
      [
        'provision, wrong admin token',
        () => provisionFlags(migration, { url: unleashUrl(unleash.port), token: WRONG_ADMIN }),
      ],
      ['provision, unreachable', () => provisionFlags(migration, { url: unleashUrl(1), token: unleash.adminToken })],
      [
        'provision, plain URL, wrong admin token',
        () => provisionFlags(migration, { url: unleash.url, token: WRONG_ADMIN }),
      ],
    ];
    for (const [port, user] of [
      [1, 'postgres'],
      [undefined, 'no_such_role_scan'],
    ] as const) {
      tries.push([
        `install, ${user}@${port ?? 'server'}`,
        async () => {
          const db = knex({ client: 'pg', connection: dbUrl(user, port), pool: { min: 0, max: 1 } });
          const pf = new Phaseflag({
            knex: db,
            stateSchema: suite.stateSchema,
            logger: library.logger(`install ${user}`),
          });
          try {
            await pf.install();
            await pf.migration(migration).expand();
          } finally {
            await pf.close().catch((e: unknown) => library.addError(`close ${user}`, e));
            await db.destroy();
          }
        },
      ]);
    }
    for (const [label, attempt] of tries) {
      const error = await attempt().then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(error !== null, `${label} fails`);
      library.addError(label, error);
    }
    for (const [label, url, token] of [
      ['flag source, wrong client token', unleashUrl(unleash.port), WRONG_CLIENT],
      ['flag source, unreachable', unleashUrl(1), unleash.clientToken],
      ['flag source, plain URL, wrong client token', unleash.url, WRONG_CLIENT],
    ] as const) {
      const source = new UnleashFlagSource({
        unleash: {
          url: `${url}/api`,
          appName: 'rel-scan',
          customHeaders: { Authorization: token },
          refreshInterval: 200,
          disableMetrics: true,
        },
        logger: library.logger(label),
      });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      library.add(`${label} status`, JSON.stringify(source.status()));
      source.close();
    }
    library.addSpans('library', spans.spans());
    assert.deepEqual(library.leaks(), [], 'no secret in library errors, logs or spans');
    recordFinding({
      section: 'Secrets in output',
      line: `${tries.length + 3} failing library paths (provision with a wrong admin token and unreachable, install on a refused database and an unknown role, the flag source with a wrong token and unreachable): no password or token in ${library.texts.length} error texts, log lines and span records`,
      figures: { texts: library.texts.length },
    });
  });
});
