import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Phaseflag } from '@phaseflag/postgres';
import { createSuiteSchema, type Suite } from '@phaseflag/testkit';
import { EXIT } from '../src/exit-codes.js';
import { createOrders, workdir, type Workdir } from './support.js';

const CONFIG = `import { defineConfig } from '@phaseflag/cli';

export default defineConfig({
  migrations: [
    {
      id: 'orders-amount',
      table: 'orders',
      oldColumn: 'amount_cents',
      newColumn: { name: 'amount', type: 'numeric(12,2)', nullable: false },
      backfill: 'amount_cents::numeric / 100',
      reverse: '(amount * 100)::integer',
    },
  ],
});
`;

// invoices: a table the database does not have yet, so its size is unknown and lint judges the statement itself.
const SAFE = `SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY invoices_total_idx ON invoices (total);\n`;
const UNSAFE = `SET lock_timeout = '2s';\nCREATE INDEX invoices_total_idx ON invoices (total);\n`;
// orders has 200 rows: with the database given, blocking it for the build of an index is no finding.
const SMALL = `SET lock_timeout = '2s';\nCREATE INDEX orders_amount_cents_idx ON orders (amount_cents);\n`;

function git(dir: string, ...args: string[]): void {
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, stdio: 'ignore' });
}

describe('phaseflag check: lint the changed files, plan every migration, report drift, one exit code', function () {
  this.timeout(240_000);
  let suite: Suite;
  let w: Workdir;

  before(async () => {
    suite = await createSuiteSchema('cli check');
    w = workdir(suite, { DATABASE_URL: suite.connectionString });
    w.writeConfig(CONFIG);
    await createOrders(suite, 200);
    mkdirSync(join(w.dir, 'migrations'));
    writeFileSync(join(w.dir, 'migrations', '001_orders.sql'), 'CREATE TABLE orders (id bigint PRIMARY KEY);\n');
    git(w.dir, 'init', '-q', '-b', 'main');
    git(w.dir, 'add', '.');
    git(w.dir, 'commit', '-q', '-m', 'base');
  });
  after(async () => {
    w?.remove();
    await suite?.cleanup();
  });

  it('a pull request adding an unsafe file: exit 1, the finding in every reporter; the safe twin passes', async () => {
    writeFileSync(join(w.dir, 'migrations', '002_index.sql'), UNSAFE);
    const text = await w.run(['check', 'migrations', '--since', 'main']);
    assert.equal(text.code, 1, text.stdout + text.stderr);
    assert.match(text.stdout, /lint {2}1 file\(s\)/);
    assert.match(text.stdout, /002_index\.sql:2:1 {2}error {2}require-concurrent-index-creation/);
    assert.match(text.stdout, /orders-amount {2}\S+\.orders: plans — \d+ statement\(s\), strongest lock/);
    assert.match(text.stdout, /check failed: 1 lint error\(s\), 0 migration\(s\) the database refuses, 0 drifted/);

    const json = await w.run(['check', 'migrations', '--since', 'main', '--json']);
    assert.equal(json.code, 1);
    const doc = json.json();
    assert.equal(doc.ok, false);
    assert.equal(doc.database, 'given');
    assert.deepEqual(
      doc.files.map((f: string) => f.split('/').pop()),
      ['002_index.sql'],
    );
    assert.equal(doc.lint.findings[0].rule, 'require-concurrent-index-creation');
    assert.equal(doc.plans[0].status, 'planned');
    assert.equal(doc.drift.migrations[0].drifted, false);

    const gh = await w.run(['check', 'migrations', '--since', 'main', '--reporter', 'github']);
    assert.equal(gh.code, 1);
    assert.match(
      gh.stdout,
      /^::error file=[^,]*002_index\.sql,line=2,col=1,title=phaseflag lint%3A require-concurrent-index-creation::/m,
    );

    writeFileSync(join(w.dir, 'migrations', '002_index.sql'), SAFE);
    writeFileSync(join(w.dir, 'migrations', '003_small.sql'), SMALL);
    const ok = await w.run(['check', 'migrations', '--since', 'main']);
    assert.equal(ok.code, EXIT.ok, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /lint {2}2 file\(s\)/);
    assert.match(ok.stdout, /check passed/);
    // Nothing was installed or registered by the check.
    const store = await suite.knex.raw('SELECT 1 FROM pg_namespace WHERE nspname = ?', [suite.stateSchema]);
    assert.equal(store.rows.length, 0);
  });

  it('a declaration the database refuses and a drifted table fail the check, each named at its declaration', async () => {
    const pf = new Phaseflag({ knex: suite.knex, stateSchema: suite.stateSchema });
    try {
      await pf.install();
      assert.equal((await w.run(['expand', 'orders-amount'])).code, EXIT.ok);
      await suite.knex.raw('ALTER TABLE orders ALTER COLUMN amount TYPE numeric(14,4)');
      const drifted = await w.run(['check', '--reporter', 'github']);
      assert.equal(drifted.code, 1, drifted.stdout + drifted.stderr);
      // The plan cannot be built over the changed column either: both are named.
      assert.match(
        drifted.stdout,
        /^::error file=phaseflag\.config\.ts,line=6,title=phaseflag check%3A PF_COLUMN_TYPE_CONFLICT::/m,
      );
      assert.match(
        drifted.stdout,
        /^::error file=phaseflag\.config\.ts,line=6,title=phaseflag check%3A PF_DRIFT::orders-amount \(\S+\.orders, phase expanded\) drifted:%0Anew column "amount": expected type numeric\(12,2\), found type numeric\(14,4\)/m,
      );
      await suite.knex.raw('ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,2)');
      assert.equal((await w.run(['check'])).code, EXIT.ok);

      w.writeConfig(CONFIG.replace("oldColumn: 'amount_cents'", "oldColumn: 'amount_in_cents'"));
      const refused = await w.run(['check', '--json']);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      const plan = refused.json().plans[0];
      assert.equal(plan.status, 'refused');
      assert.equal(plan.code, 'PF_UNKNOWN_COLUMN');
      assert.match(plan.message, /amount_in_cents/);
    } finally {
      w.writeConfig(CONFIG);
      await pf.close();
    }
  });

  it('no database: plans on an embedded PostgreSQL built from a schema file or a knex migrations directory', async () => {
    const noDb = { DATABASE_URL: undefined, PHASEFLAG_STATE_SCHEMA: undefined };
    // Without a real database lint has no table sizes: the small table's index build would be a finding.
    rmSync(join(w.dir, 'migrations', '002_index.sql'));
    rmSync(join(w.dir, 'migrations', '003_small.sql'));
    const missing = await w.run(['check', 'migrations'], { env: noDb });
    assert.equal(missing.code, EXIT.usage, missing.stderr);
    assert.match(missing.stderr, /PF_USAGE_NO_DATABASE/);

    writeFileSync(
      join(w.dir, 'schema.sql'),
      '\\restrict abc\nCREATE TABLE public.orders (id bigint PRIMARY KEY, amount_cents integer NOT NULL);\n',
    );
    const built = await w.run(['check', 'migrations', '--schema', 'schema.sql', '--json'], { env: noDb });
    assert.equal(built.code, EXIT.ok, built.stdout + built.stderr);
    const doc = built.json();
    assert.equal(doc.database, 'embedded, built from schema.sql');
    assert.equal(doc.plans[0].status, 'planned');
    assert.equal(doc.drift, null);

    mkdirSync(join(w.dir, 'knex'));
    writeFileSync(
      join(w.dir, 'knex', '20260101000000_orders.cjs'),
      "exports.up = (knex) => knex.schema.createTable('orders', (t) => { t.bigInteger('id').primary(); t.integer('price').notNullable(); });\nexports.down = () => {};\n",
    );
    const wrong = await w.run(['check', '--schema', 'knex'], { env: noDb });
    assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
    assert.match(wrong.stdout, /database: embedded, built from 1 knex migration in knex/);
    assert.match(wrong.stdout, /PF_UNKNOWN_COLUMN/);

    writeFileSync(join(w.dir, 'broken.sql'), 'CREATE TABLE orders (id bigint PRIMARY KEY,);\n');
    const broken = await w.run(['check', '--schema', 'broken.sql'], { env: noDb });
    assert.equal(broken.code, EXIT.usage);
    assert.match(
      broken.stderr,
      /PF_USAGE_BAD_OPTION: --schema broken\.sql did not build on an empty database: syntax error/,
    );
  });

  it('--help shows the pull-request example and the exit codes', async () => {
    const help = await w.run(['check', '--help']);
    assert.equal(help.code, EXIT.ok);
    assert.match(help.stdout, /npx phaseflag check migrations\/ --since origin\/main --reporter github/);
    assert.match(help.stdout, /Exit codes: 0 all clear/);
  });
});
