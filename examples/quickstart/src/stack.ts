/**
 * Everything the demo runs, started in order and stopped in reverse: a PostgreSQL (embedded unless DATABASE_URL
 * is set), a database of its own on it with the orders tables seeded, an in-process unleash-server (its own
 * database on the same server) with the phase flags provisioned, an OTLP receiver, two orders-service instances
 * as child processes, and load against both.
 */
import { randomBytes } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import knexFactory, { type Knex } from 'knex';
import { defineMigration, type Migration } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import { UnleashFlagAdmin, provisionFlags } from '@phaseflag/unleash';
import { createSchema, ordersMigrations, seed, startLoad } from '@phaseflag/example-orders-service';
import { startPostgres, startUnleash, type LocalUnleash } from '@phaseflag/local';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.js';
import { ServiceProcess } from './service-process.js';

export type Load = ReturnType<typeof startLoad>;

export interface StackOptions {
  rows: number;
  instances: number;
  verbose: boolean;
  /** Keep these spans for the timeline (all are forwarded to the user's collector). */
  keepSpan: (name: string) => boolean;
  say: (line: string) => void;
  /** Where Unleash listens; taken only when free (else any free port). Default: any free port. */
  unleashPort?: number;
  /** Aborting stops the start-up between steps; what was started is stopped again. */
  signal?: AbortSignal;
}

export interface Stack {
  readonly database: { kind: 'embedded' | 'env'; label: string; url: string };
  readonly knex: Knex;
  /** Read-only use: `migration(m).status()`, what `phaseflag status` shows an operator. */
  readonly pf: Phaseflag;
  readonly unleash: LocalUnleash;
  /** The operator's hands: flags turned on and rollouts moved through Unleash's Admin API. */
  readonly flags: UnleashFlagAdmin;
  readonly receiver: OtlpReceiver;
  readonly services: ServiceProcess[];
  readonly migrations: Migration[];
  /** The strategy ids provisionFlags added, by flag name (read-new's rollout is moved through its id). */
  readonly strategyIds: Map<string, string>;
  load: Load | undefined;
  /** Stops everything that was started, in reverse order; each step is bounded, errors are collected. Idempotent. */
  close(): Promise<string[]>;
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const cleanups: Array<[string, () => Promise<unknown>]> = [];
  let closing: Promise<string[]> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const problems: string[] = [];
      for (const [what, run] of cleanups.reverse()) {
        try {
          await withTimeout(run(), 20_000, what);
        } catch (error) {
          problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      return problems;
    })());

  try {
    // The demo never touches a server the user did not name: DATABASE_URL, else an embedded one.
    const started = performance.now();
    const db = await openDatabase();
    cleanups.push(['the PostgreSQL server', () => db.release()]);
    const server = new URL(db.connectionString);
    // Services may reach the server through a transaction pooler (DATABASE_URL); the operator's side (creating the
    // demo's database, seeding, Unleash's own tables, the controllers' steps) then needs its own address.
    const directUrl = db.kind === 'embedded' ? undefined : process.env.PHASEFLAG_DIRECT_URL || undefined;
    const serverUrl = directUrl ?? db.connectionString;
    const label =
      db.kind === 'embedded'
        ? `an embedded PostgreSQL on ${server.host}`
        : `${server.host}${server.pathname} (DATABASE_URL)${directUrl ? `, operator on ${new URL(directUrl).host} (PHASEFLAG_DIRECT_URL)` : ''}`;
    o.say(`  postgres       ${label}, ready in ${seconds(performance.now() - started)}`);

    // A database of the demo's own: nothing of the user's is touched, and dropping it removes every trace.
    const name = `phaseflag_demo_${randomBytes(4).toString('hex')}`;
    const admin = knexFactory({ client: 'pg', connection: serverUrl, pool: { min: 0, max: 1 } });
    try {
      await admin.raw('CREATE DATABASE ??', [name]);
    } catch (error) {
      throw new Error(
        `could not create the demo's database ${name} on ${label}: ${(error as Error).message}\n  hint: the demo works in a database of its own; give the role CREATEDB, or unset DATABASE_URL to use an embedded PostgreSQL`,
      );
    } finally {
      await admin.destroy();
    }
    cleanups.push([
      `database ${name}`,
      async () => {
        const dropper = knexFactory({ client: 'pg', connection: serverUrl, pool: { min: 0, max: 1 } });
        try {
          await dropper.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [name]);
        } finally {
          await dropper.destroy();
        }
      },
    ]);
    const inDemoDatabase = (url: string) => Object.assign(new URL(url), { pathname: `/${name}` }).toString();
    const demoUrl = inDemoDatabase(db.connectionString);
    const operatorUrl = inDemoDatabase(serverUrl);
    const knex = knexFactory({ client: 'pg', connection: operatorUrl, pool: { min: 0, max: 4 } });
    cleanups.push(["the demo's connection pool", () => knex.destroy()]);

    o.signal?.throwIfAborted();
    const seeding = performance.now();
    await createSchema(knex);
    await seed(knex, { rows: o.rows });
    await knex.raw('ANALYZE');
    o.say(
      `  tables         orders: ${o.rows.toLocaleString('en-US')} rows, customers: ${count(await knex('customers').count({ n: '*' }))} rows, seeded in ${seconds(performance.now() - seeding)}`,
    );

    o.signal?.throwIfAborted();
    const receiver = await startOtlpReceiver({ keep: o.keepSpan });
    cleanups.push(['the OTLP receiver', () => receiver.close()]);

    const port = o.unleashPort !== undefined && (await isFree(o.unleashPort)) ? o.unleashPort : undefined;
    const unleash = await startUnleash({ databaseUrl: serverUrl, ...(port ? { port } : {}) });
    cleanups.push(['unleash-server', () => unleash.stop()]);
    const flags = new UnleashFlagAdmin({
      url: unleash.url,
      token: unleash.adminToken,
      environment: unleash.environment,
    });
    const migrations = ordersMigrations.map((m) => defineMigration(m));
    const strategyIds = new Map<string, string>();
    for (const m of migrations) {
      const report = await provisionFlags(m, {
        url: unleash.url,
        token: unleash.adminToken,
        environment: unleash.environment,
      });
      for (const f of report.flags) if (f.strategyId) strategyIds.set(f.name, f.strategyId);
    }
    o.say(
      `  unleash        ${unleash.url} (in-process unleash-server 6.10), ${strategyIds.size} flags provisioned, all off`,
    );

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: demoUrl,
      PHASEFLAG_DIRECT_URL: directUrl ? operatorUrl : undefined,
      UNLEASH_URL: unleash.apiUrl,
      UNLEASH_API_TOKEN: unleash.clientToken,
      UNLEASH_REFRESH_MS: '1000',
      PORT: '0',
      PHASEFLAG_CONTROLLER: '1',
      PHASEFLAG_CONTROLLER_INTERVAL_MS: '1000',
      PHASEFLAG_DROP_OLD_COLUMN: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'orders-service',
    };
    // Per-signal endpoints would win over ours in the children; the receiver forwards to them instead.
    for (const key of [
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
      'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT',
      'OTEL_EXPORTER_OTLP_HEADERS',
    ])
      delete env[key];

    o.signal?.throwIfAborted();
    const services: ServiceProcess[] = [];
    cleanups.push(['the service instances', () => Promise.all(services.map((s) => s.stop()))]);
    const booting = performance.now();
    await Promise.all(
      Array.from({ length: o.instances }, async (_, i) => {
        services[i] = await ServiceProcess.start(`orders-${i + 1}`, env, { verbose: o.verbose });
      }),
    );
    o.say(
      `  services       ${services.map((s) => `${s.instanceId} ${s.url} (pid ${s.pid})`).join(', ')}, up in ${seconds(performance.now() - booting)}`,
    );

    o.signal?.throwIfAborted();
    const pf = new Phaseflag({ knex, actor: 'demo-operator' });
    cleanups.push(['the status reader', () => pf.close()]);
    const stack: Stack = {
      database: { kind: db.kind, label, url: demoUrl },
      knex,
      pf,
      unleash,
      flags,
      receiver,
      services,
      migrations,
      strategyIds,
      load: undefined,
      close,
    };
    stack.load = startLoad({ targets: services.map((s) => s.url), seededRows: o.rows });
    cleanups.push([
      'the load',
      async () => {
        await stack.load?.stop();
      },
    ]);
    o.say(
      `  load           reads and writes of seeded and new orders and customers on both instances, every answer checked`,
    );
    return stack;
  } catch (error) {
    const problems = await close();
    if (problems.length > 0) process.stderr.write(`while stopping after the failure: ${problems.join('; ')}\n`);
    throw error;
  }
}

/** DATABASE_URL when set (the demo then works in a database of its own there), else an embedded PostgreSQL. */
async function openDatabase(): Promise<{
  connectionString: string;
  kind: 'embedded' | 'env';
  release: () => Promise<void>;
}> {
  const given = process.env.DATABASE_URL;
  if (given) return { connectionString: given, kind: 'env', release: async () => undefined };
  const server = await startPostgres();
  return { connectionString: server.url, kind: 'embedded', release: () => server.stop() };
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '127.0.0.1', port }, () => probe.close(() => resolve(true)));
  });
}

function count(rows: Array<{ n?: unknown }>): string {
  return Number(rows[0]?.n ?? 0).toLocaleString('en-US');
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not stop within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
