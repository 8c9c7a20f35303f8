import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { createSuiteSchema, startUnleash, type Suite, type UnleashServer } from '@phaseflag/testkit';
import { OrdersServiceProcess } from './fixtures/orders-service-process.js';
import { OtlpReceiver } from './fixtures/orders-otlp-receiver.js';

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));
const SERVICE_DIR = `${EXAMPLES}orders-service`;

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  volumes?: string[];
}
const compose = parse(readFileSync(`${EXAMPLES}docker-compose.yml`, 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const svc = (name: string): ComposeService =>
  compose.services[name] ?? assert.fail(`docker-compose.yml has no service ${name}`);
const dockerCmd = /^CMD (\[.*\])$/m.exec(readFileSync(`${SERVICE_DIR}/Dockerfile`, 'utf8'))?.[1];

/** Runs a compose `command` (or the image's CMD) the way the container would, from the example's directory. */
async function run(
  command: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  assert.equal(command[0], 'node');
  const child = spawn(process.execPath, command.slice(1), {
    cwd: SERVICE_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/**
 * Docker does not run here, so examples/docker-compose.yml is kept correct by running what it says without it:
 * its environment, its commands and its healthcheck, against the same kinds of servers (Postgres, a real
 * unleash-server 6.10, an OTLP/HTTP receiver in Jaeger's place), with only host names, ports and tokens swapped.
 */
describe('examples/docker-compose.yml, run without Docker', function () {
  this.timeout(180_000);
  let suite: Suite;
  let unleash: UnleashServer;
  let otlp: OtlpReceiver;
  const services: OrdersServiceProcess[] = [];

  /** A compose environment with the stack's addresses and tokens replaced by the local ones. */
  const local = (env: Record<string, string> = {}): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) {
      out[k] = String(v)
        .replace('postgres://postgres:postgres@postgres:5432/orders', suite.databaseUrl)
        .replace('http://unleash:4242', unleash.url)
        .replace('http://jaeger:4318', otlp.url)
        .replace(String(svc('unleash').environment!.INIT_CLIENT_API_TOKENS), unleash.clientToken)
        .replace(String(svc('unleash').environment!.INIT_ADMIN_API_TOKENS), unleash.adminToken);
    }
    // Our own schemas and a smaller table; any free port on loopback.
    return {
      ...out,
      DB_SCHEMA: suite.schema,
      PHASEFLAG_STATE_SCHEMA: suite.stateSchema,
      SEED_ROWS: '2000',
      HOST: '127.0.0.1',
      PORT: '0',
    };
  };

  before(async () => {
    suite = await createSuiteSchema('orders_compose', { pool: { min: 0, max: 2 } });
    [unleash, otlp] = await Promise.all([startUnleash(), OtlpReceiver.start()]);
  });

  after(async () => {
    for (const s of services) await s.kill();
    await unleash?.stop();
    await otlp?.close();
    await suite?.cleanup();
  });

  it('is consistent: tokens, databases, ports and every variable the service reads', () => {
    const u = svc('unleash').environment!;
    for (const name of ['orders-a', 'orders-b']) {
      const env = svc(name).environment!;
      assert.equal(env.UNLEASH_API_TOKEN, u.INIT_CLIENT_API_TOKENS, `${name} uses the client token Unleash creates`);
      assert.match(
        String(env.UNLEASH_API_TOKEN),
        /^default:development\./,
        'a client token for project default, environment development',
      );
      assert.equal(env.UNLEASH_URL, 'http://unleash:4242/api');
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://jaeger:4318');
      assert.equal(env.HOST, '0.0.0.0', 'reachable from the other containers');
      const known = [
        'DATABASE_URL',
        'UNLEASH_URL',
        'UNLEASH_API_TOKEN',
        'UNLEASH_REFRESH_MS',
        'UNLEASH_APP_NAME',
        'PORT',
        'HOST',
        'INSTANCE_ID',
        'SEED_ROWS',
        'PHASEFLAG_CONTROLLER',
        'PHASEFLAG_CONTROLLER_INTERVAL_MS',
        'PHASEFLAG_DROP_OLD_COLUMN',
        'PHASEFLAG_STATE_SCHEMA',
        'DB_SCHEMA',
        'OTEL_EXPORTER_OTLP_ENDPOINT',
        'OTEL_SERVICE_NAME',
      ];
      for (const k of Object.keys(env)) assert.ok(known.includes(k), `${name}: ${k} is a variable the service reads`);
      for (const k of Object.keys(env))
        assert.ok(readFileSync(`${SERVICE_DIR}/README.md`, 'utf8').includes(k), `README documents ${k}`);
    }
    assert.equal(svc('provision-flags').environment!.UNLEASH_ADMIN_TOKEN, u.INIT_ADMIN_API_TOKENS);
    assert.match(String(u.INIT_ADMIN_API_TOKENS), /^\*:\*\./);
    assert.match(String(u.DATABASE_URL), /@postgres:5432\/unleash$/);
    assert.match(readFileSync(`${SERVICE_DIR}/docker/postgres-init.sql`, 'utf8'), /CREATE DATABASE unleash;/);
    assert.ok(
      svc('postgres').volumes!.some((v) =>
        v.startsWith('./orders-service/docker/postgres-init.sql:/docker-entrypoint-initdb.d/'),
      ),
    );
    assert.ok(dockerCmd, 'the Dockerfile has a JSON-form CMD');
  });

  it('provision-flags creates the eight phase flags, and a second run changes nothing', async () => {
    const command = svc('provision-flags').command!;
    const first = await run(command, local(svc('provision-flags').environment));
    assert.equal(first.code, 0, first.stderr);
    const created = (JSON.parse(first.stdout) as { provisioned: Array<{ created: string[] }> }).provisioned.flatMap(
      (p) => p.created,
    );
    assert.equal(created.length, 8, first.stdout);
    const second = await run(command, local(svc('provision-flags').environment));
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(
      (JSON.parse(second.stdout) as { provisioned: Array<{ created: string[]; existing: string[] }> }).provisioned.map(
        (p) => [p.created.length, p.existing.length],
      ),
      [
        [0, 4],
        [0, 4],
      ],
    );
  });

  it('orders-a and orders-b start from the image CMD with the compose environment, seed once and pass their healthcheck', async () => {
    const cmd = JSON.parse(dockerCmd!) as string[];
    assert.deepEqual(cmd.slice(0, 3), ['node', '--import', 'tsx']);
    for (const name of ['orders-a', 'orders-b']) {
      services.push(
        await OrdersServiceProcess.start({ ...local(svc(name).environment), OTEL_SERVICE_NAME: 'orders-service' }),
      );
    }
    assert.deepEqual(
      services.map((s) => s.instanceId),
      ['orders-a', 'orders-b'],
    );
    const counts = (
      await suite.knex.raw(
        'SELECT (SELECT count(*) FROM orders)::int AS orders, (SELECT count(*) FROM customers)::int AS customers',
      )
    ).rows[0];
    assert.deepEqual(counts, { orders: 2000, customers: 200 }, 'seeded once although both instances were asked to');
    for (const s of services) {
      const test = svc(s.instanceId).healthcheck!.test;
      const script = test[3]!.replace('http://127.0.0.1:3000', s.url);
      assert.notEqual(script, test[3], 'the healthcheck names the container port');
      const r = await run(['node', '-e', script], {});
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('load runs its compose command against both instances with no failed request, and both instances exit 0 on SIGTERM', async () => {
    const command = svc('load').command!.map((a) =>
      a.replace('http://orders-a:3000,http://orders-b:3000', services.map((s) => s.url).join(',')),
    );
    const r = await run([...command, '--duration', '4', '--every', '1'], {});
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(r.stdout) as { requests: number; failed: number; reads: number; writes: number };
    assert.equal(report.failed, 0);
    assert.ok(report.requests > 100 && report.reads > 0 && report.writes > 0, r.stdout);
    assert.deepEqual(await Promise.all(services.map((s) => s.stop())), [0, 0]);
    assert.ok(
      otlp.spans.some((s) => s.kind === 2 && s.serviceName === 'orders-service'),
      'HTTP server spans reached the OTLP endpoint',
    );
  });
});
