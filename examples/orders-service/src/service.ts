/**
 * One instance of the orders service: knex, phaseflag embedded for both migrations (a router each, one
 * controller over both), unleash-client as the flag source, and the HTTP API. `startServer()` is what
 * server.ts runs from the environment; tests and the demo call it in-process.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import { Unleash } from 'unleash-client';
import type { FlagSource, Logger } from '@phaseflag/core';
import { Phaseflag, type Controller } from '@phaseflag/postgres';
import { UnleashFlagSource, destroyClient } from '@phaseflag/unleash';
import { createApp, describeMigration, type MigrationView } from './app.js';
import { customersEmail, ordersAmount } from './migrations.js';
import { checkSchemaName, createSchema, seed } from './schema.js';

export interface ServerOptions {
  databaseUrl: string;
  /** Unleash's client API, e.g. http://localhost:4242/api, and a client token. Or pass `flags` instead. */
  unleashUrl?: string;
  unleashApiToken?: string;
  /** unleash-client's refreshInterval. Default 15 000 (the client's own default). */
  unleashRefreshMs?: number;
  unleashAppName?: string;
  /** Any FlagSource instead of Unleash (StaticFlagSource in a script). */
  flags?: FlagSource;
  port?: number;
  host?: string;
  instanceId?: string;
  /** Run a Controller for both migrations (one leader among all instances). Default true. */
  controller?: boolean;
  controllerIntervalMs?: number;
  /** Contract also drops the old columns. Default false (no flag drops a column). */
  dropOldColumn?: boolean;
  /** The database's own address for the controller's steps when `databaseUrl` goes through a transaction pooler. */
  directUrl?: string;
  /** search_path schema for the service's tables. */
  dbSchema?: string;
  /** phaseflag's state schema. Default "phaseflag". */
  stateSchema?: string;
  /** Create the tables if missing and seed them with this many orders if empty, before anything else. */
  seedRows?: number;
  /** Machine-readable events (server.ts prints them as JSON lines). */
  onEvent?: (event: ServiceEvent) => void;
  /** Human logs. Default: stderr. */
  logger?: Logger;
}

export type ServiceEvent =
  | { event: 'listening'; url: string; instanceId: string; phases: Record<string, string> }
  | { event: 'phase'; migration: string; phase: string; instanceId: string }
  | { event: 'leader'; migration: string; leader: boolean; instanceId: string }
  | { event: 'refused'; migration: string; action: string; phase: string; reason: string; instanceId: string }
  | { event: 'backfill'; migration: string; rowsDone: number; rowsEstimate: number; done: boolean; instanceId: string };

export interface RunningServer {
  url: string;
  instanceId: string;
  knex: Knex;
  pf: Phaseflag;
  controller: Controller | undefined;
  /** What GET /phaseflag answers. */
  migrations(): MigrationView[];
  /** Stops taking requests, stops the controller (a running backfill stops after its batch), closes everything. */
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const instanceId = o.instanceId ?? `orders-${process.pid}-${randomBytes(3).toString('hex')}`;
  const logger = o.logger ?? stderrLogger(instanceId);
  const emit = (e: ServiceEvent) => o.onEvent?.(e);
  const schema = o.dbSchema === undefined ? undefined : checkSchemaName(o.dbSchema);

  const knex = knexFactory({
    client: 'pg',
    connection: {
      connectionString: o.databaseUrl,
      application_name: `orders-service ${instanceId}`,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    },
    pool: { min: 0, max: 10 },
  });
  const cleanup: Array<() => unknown> = [() => knex.destroy()];
  const undo = async () => {
    for (const step of cleanup.splice(0).reverse()) await Promise.resolve(step()).catch(() => undefined);
  };
  try {
    if (o.seedRows) {
      await createSchema(knex, schema ? { schema } : {});
      const seeded = await seed(knex, { rows: o.seedRows, ...(schema ? { schema } : {}) });
      if (seeded.orders > 0) logger.info(`seeded ${seeded.orders} orders and ${seeded.customers} customers`);
    }

    // ---- phaseflag, embedded: state in Postgres, one handle per migration, registered (phase pending) at start.
    const pf = new Phaseflag({
      knex,
      logger,
      actor: instanceId,
      ...(o.directUrl ? { directUrl: o.directUrl } : {}),
      ...(o.stateSchema ? { stateSchema: o.stateSchema } : {}),
    });
    cleanup.push(() => pf.close());
    await pf.install();
    const amount = pf.migration(ordersAmount);
    const email = pf.migration(customersEmail);
    for (const handle of [amount, email]) await handle.register();

    const flags = o.flags ?? (await unleashSource(o, instanceId, logger, cleanup));
    const routers = {
      amount: await amount.router(flags, { instanceId }),
      email: await email.router(flags, { instanceId }),
    };

    let controller: Controller | undefined;
    let shuttingDown = false;
    if (o.controller !== false) {
      const lastProgress = new Map<string, number>();
      controller = pf.controller([amount, email], {
        flags,
        instanceId,
        intervalMs: o.controllerIntervalMs ?? 5000,
        dropOldColumn: o.dropOldColumn === true,
        // The controller reports each refusal it records and each change of its leadership as it happens.
        onEvent: (e) => {
          if (e.kind === 'refused')
            emit({
              event: 'refused',
              migration: e.migrationId,
              action: e.action,
              phase: e.phase,
              reason: e.reason,
              instanceId,
            });
          // Handing the lead over at shutdown is not news for the event stream (the process is going away).
          else if (e.kind === 'leader' && !shuttingDown)
            emit({ event: 'leader', migration: e.migrationId, leader: e.leader, instanceId });
        },
        backfill: {
          onProgress: (p) => {
            const now = Date.now();
            if (!p.done && now - (lastProgress.get(p.migrationId) ?? 0) < 1000) return;
            lastProgress.set(p.migrationId, now);
            emit({
              event: 'backfill',
              migration: p.migrationId,
              rowsDone: p.rowsDone,
              rowsEstimate: p.rowsEstimate,
              done: p.done,
              instanceId,
            });
          },
        },
      });
      cleanup.push(() => controller?.stop());
    }

    // ---- what this instance applies: a line per phase change its routers take.
    const applied = new Map<string, string>();
    for (const r of Object.values(routers)) {
      const id = r.core.migration.id;
      applied.set(id, r.core.currentPhase);
      // The router's own listener was registered first and has already taken the snapshot when this runs.
      cleanup.push(
        pf.migration(r.core.migration).watch(() => {
          if (r.core.currentPhase === applied.get(id)) return;
          applied.set(id, r.core.currentPhase);
          emit({ event: 'phase', migration: id, phase: r.core.currentPhase, instanceId });
        }),
      );
    }
    cleanup.push(() => {
      shuttingDown = true;
    });

    const app = createApp({
      knex,
      flags,
      routers,
      controller,
      instanceId,
      onError: (error, req) => logger.error(`${req.method} ${req.originalUrl}: ${error.message}`),
    });
    const http = createServer(app);
    await listen(http, o.port ?? 0, o.host ?? '127.0.0.1');
    cleanup.push(() => closeHttp(http));
    await controller?.start();

    const port = (http.address() as { port: number }).port;
    const host = !o.host || o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
    const url = `http://${host}:${port}`;
    emit({ event: 'listening', url, instanceId, phases: Object.fromEntries(applied) });
    let closing: Promise<void> | undefined;
    return {
      url,
      instanceId,
      knex,
      pf,
      controller,
      migrations: () => [routers.amount, routers.email].map((r) => describeMigration(r, { flags, controller })),
      close: () => (closing ??= undo()),
    };
  } catch (error) {
    await undo();
    throw error;
  }
}

/**
 * The user's own unleash-client, as the service would have for its feature flags anyway, wrapped as phaseflag's
 * flag source. Each instance keeps its backup file in a directory of its own: two instances on one host never
 * share one. Unleash not answering at start is not fatal: flags stay unknown, reads stay old, writes follow the
 * phase in Postgres, and the source becomes known when Unleash answers.
 */
async function unleashSource(
  o: ServerOptions,
  instanceId: string,
  logger: Logger,
  cleanup: Array<() => unknown>,
): Promise<FlagSource> {
  if (!o.unleashUrl || !o.unleashApiToken)
    throw new Error('Set UNLEASH_URL (…/api) and UNLEASH_API_TOKEN (a client token), or pass `flags`.');
  const appName = o.unleashAppName ?? 'orders-service';
  const backupPath = join(tmpdir(), `orders-service-unleash-${instanceId.replace(/[^\w.-]/g, '_')}`);
  mkdirSync(backupPath, { recursive: true });
  const refreshIntervalMs = o.unleashRefreshMs ?? 15_000;
  const client = new Unleash({
    url: o.unleashUrl,
    appName,
    instanceId,
    refreshInterval: refreshIntervalMs,
    backupPath,
    customHeaders: { Authorization: o.unleashApiToken },
  });
  const source = new UnleashFlagSource({
    client,
    refreshIntervalMs,
    logger,
    backupFile: join(backupPath, `unleash-backup-${appName}.json`),
  });
  cleanup.push(
    () => destroyClient(client),
    () => source.close(),
  );
  if (!(await source.whenKnown(10_000))) {
    logger.warn(
      `Unleash at ${o.unleashUrl} has not answered within 10 s: serving with unknown flags (reads old) until it does`,
    );
  }
  return source;
}

export function stderrLogger(instanceId: string): Logger {
  const line = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    process.stderr.write(`${new Date().toISOString()} ${level} [${instanceId}] ${message}${extra}\n`);
  };
  return { debug: () => undefined, info: line('info'), warn: line('warn'), error: line('error') };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Lets requests in flight finish (up to 5 s), then cuts what is left (keep-alive sockets of the load generator). */
function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), 5000);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}
