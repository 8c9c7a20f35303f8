import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createSuiteSchema, waitFor, type Suite } from '@phaseflag/testkit';
import pg from 'pg';
import { EXIT } from '../src/exit-codes.js';
import { ordersConfig, workdir, type Workdir } from './support.js';

const FLAGS = [
  'orders-amount.dual-write',
  'orders-amount.backfill',
  'orders-amount.read-new',
  'orders-amount.contract',
];

/** What `phaseflag dev` prints as `export NAME='value'` lines. */
function exported(stdout: string): Record<string, string> {
  return Object.fromEntries(
    [...stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]),
  );
}

async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** The names of the flags a GET of the Admin or Client API lists. */
async function flagNames(url: string, token: string): Promise<string[]> {
  const response = await fetch(url, { headers: { Authorization: token } });
  assert.equal(response.status, 200, `${url}: ${response.status}`);
  const body = (await response.json()) as { features: Array<{ name: string }> };
  return body.features.map((f) => f.name).sort();
}

describe('phaseflag dev: PostgreSQL and Unleash for a person, until Ctrl-C', function () {
  this.timeout(240_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli dev');
    w = workdir(undefined, { PHASEFLAG_STATE_SCHEMA: suite.stateSchema });
    w.writeConfig(ordersConfig(suite.schema));
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('prints where to connect; both answer to what it printed; Ctrl-C leaves no process, directory or database (exit 130)', async () => {
    // DATABASE_URL in the shell names another server: dev starts its own all the same.
    const dev = w.start(['dev'], { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nothing' } });
    await waitFor(() => dev.output.stderr.includes('ready.'), { timeoutMs: 120_000, description: 'dev to be ready' });
    const env = exported(dev.output.stdout);
    assert.deepEqual(Object.keys(env), ['DATABASE_URL', 'UNLEASH_URL', 'UNLEASH_API_TOKEN', 'UNLEASH_ADMIN_TOKEN']);
    assert.match(env.DATABASE_URL!, /^postgres:\/\/postgres:postgres@127\.0\.0\.1:\d+\/app$/);
    assert.match(dev.output.stderr, /web UI\s+http:\/\/127\.0\.0\.1:\d+\s+login admin \/ unleash4all/);
    const dataDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith(`phaseflag-embedded-${dev.child.pid}-`));
    assert.equal(dataDirs().length, 1);

    // The state store is installed in the database it printed.
    const tables = await query<{ n: number }>(
      env.DATABASE_URL!,
      'SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1',
      [suite.stateSchema],
    );
    assert.ok(tables[0]!.n > 0, 'state store tables');
    // The admin token sees the provisioned flags; the client token reads them through the Client API.
    const base = env.UNLEASH_URL!.replace(/\/api$/, '');
    assert.deepEqual(
      await flagNames(`${base}/api/admin/projects/default/features`, env.UNLEASH_ADMIN_TOKEN!),
      [...FLAGS].sort(),
    );
    assert.deepEqual(await flagNames(`${env.UNLEASH_URL}/client/features`, env.UNLEASH_API_TOKEN!), [...FLAGS].sort());
    // The other commands work with the printed variables.
    const status = await w.run(['status', '--json'], { env });
    assert.equal(status.code, EXIT.ok, status.stderr);

    dev.child.kill('SIGINT');
    const done = await dev.done;
    assert.equal(done.code, EXIT.interrupted, done.stderr);
    assert.match(done.stderr, /stopped: nothing left running/);
    assert.deepEqual(dataDirs(), [], 'no data directory left');
    await assert.rejects(query(env.DATABASE_URL!, 'SELECT 1'), 'PostgreSQL is stopped');
    await assert.rejects(fetch(`${base}/health`), 'Unleash is stopped');
  });

  it("--database-url: the state store and Unleash's own database go there; --json; SIGTERM drops Unleash's database only", async () => {
    const server = suite.databaseUrl;
    const dev = w.start(['dev', '--json', '--database-url', server]);
    await waitFor(() => dev.output.stderr.includes('ready.'), { timeoutMs: 120_000, description: 'dev to be ready' });
    const doc = JSON.parse(dev.output.stdout) as {
      databaseUrl: string;
      postgres: unknown;
      unleash: { database: string; url: string; adminToken: string };
      env: Record<string, string>;
      provisioned: Array<{ migration: string; created: string[] }>;
    };
    assert.equal(doc.databaseUrl, server);
    assert.equal(doc.postgres, null);
    assert.deepEqual(doc.provisioned, [{ migration: 'orders-amount', created: FLAGS }]);
    assert.equal(doc.env.UNLEASH_ADMIN_TOKEN, doc.unleash.adminToken);
    const unleashDb = () =>
      query<{ datname: string }>(server, 'SELECT datname FROM pg_database WHERE datname = $1', [doc.unleash.database]);
    assert.equal((await unleashDb()).length, 1);

    dev.child.kill('SIGTERM');
    const done = await dev.done;
    assert.equal(done.code, EXIT.interrupted, done.stderr);
    assert.deepEqual(await unleashDb(), [], "Unleash's database is dropped");
    await assert.rejects(fetch(`${doc.unleash.url}/health`));
    const store = await query<{ n: number }>(server, 'SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1', [
      suite.stateSchema,
    ]);
    assert.ok(store[0]!.n > 0, "the state store stays: it is the application's database");
  });

  it('a port that is no port is a usage error before anything starts', async () => {
    const r = await w.run(['dev', '--unleash-port', '99999']);
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /PF_USAGE_BAD_OPTION/);
  });
});
