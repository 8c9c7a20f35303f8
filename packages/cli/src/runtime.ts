import { hostname, userInfo } from 'node:os';
import { redactUrl, type FlagSource, type Logger, type Migration } from '@phaseflag/core';
import { Phaseflag, type MigrationHandle } from '@phaseflag/postgres';
import { UnleashFlagSource, UnleashRejectedError, UnleashUnavailableError } from '@phaseflag/unleash';
import knexFactory, { type Knex } from 'knex';
import { InMemStorageProvider } from 'unleash-client';
import { findMigration, loadConfig, type LoadedConfig } from './config.js';
import { CliError } from './errors.js';
import type { Output } from './output.js';
import { printLockWait } from './lock-wait-view.js';

/** Options every command accepts (commander's optsWithGlobals()). Flags beat the environment, which beats the config. */
export interface GlobalOptions {
  config?: string;
  databaseUrl?: string;
  directUrl?: string;
  stateSchema?: string;
  unleashUrl?: string;
  unleashApiToken?: string;
  unleashAdminToken?: string;
  unleashProject?: string;
  unleashEnvironment?: string;
  json?: boolean;
  verbose?: boolean;
}

export interface UnleashSettings {
  url: string | undefined;
  apiToken: string | undefined;
  adminToken: string | undefined;
  project: string;
  environment: string;
}

const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name]);

export function databaseSettings(
  o: GlobalOptions,
  config: LoadedConfig,
): { url: string; directUrl: string | undefined; stateSchema: string | undefined } {
  const url = o.databaseUrl ?? env('DATABASE_URL') ?? config.database.url;
  if (!url) {
    throw new CliError(
      'PF_USAGE_NO_DATABASE',
      'No database to connect to.',
      'Pass --database-url, set DATABASE_URL, or set database.url in the config.',
    );
  }
  return {
    url,
    // The operator side's connection when `url` goes through a transaction pooler (PF_TRANSACTION_POOLER says so).
    directUrl: o.directUrl ?? env('PHASEFLAG_DIRECT_URL') ?? config.database.directUrl,
    stateSchema: o.stateSchema ?? env('PHASEFLAG_STATE_SCHEMA') ?? config.database.stateSchema,
  };
}

export function unleashSettings(o: GlobalOptions, config: LoadedConfig | undefined): UnleashSettings {
  const c = config?.unleash ?? {};
  const url = o.unleashUrl ?? env('UNLEASH_URL') ?? c.url;
  return {
    // The base URL, as in the browser; a URL given with its /api suffix works too.
    url: url?.replace(/\/+$/, '').replace(/\/api$/, ''),
    apiToken: o.unleashApiToken ?? env('UNLEASH_API_TOKEN') ?? c.apiToken,
    adminToken: o.unleashAdminToken ?? env('UNLEASH_ADMIN_TOKEN') ?? c.adminToken,
    project: o.unleashProject ?? env('UNLEASH_PROJECT') ?? c.project ?? 'default',
    environment: o.unleashEnvironment ?? env('UNLEASH_ENVIRONMENT') ?? c.environment ?? 'development',
  };
}

/** Engine logs on stderr with --verbose; silent otherwise (the commands say what happened themselves). */
function cliLogger(out: Output): Logger {
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    out.debug(`${level} ${message}${fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}`);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** knex's logger options: every level on stderr (warnings and errors always, debug output with --verbose). */
export function knexLog(out: Output): Knex.Config['log'] {
  const text = (m: unknown) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m));
  return {
    warn: (m: unknown) => out.debug(`knex warn ${text(m)}`),
    error: (m: unknown) => out.debug(`knex error ${text(m)}`),
    deprecate: (method: string, alternative: string) => out.debug(`knex deprecate ${method}: use ${alternative}`),
    debug: (m: unknown) => out.debug(`knex debug ${text(m)}`),
  };
}

/** Everything a command that touches the database holds; `close()` releases it all. */
export interface Session {
  config: LoadedConfig;
  pf: Phaseflag;
  knex: Knex;
  migration(id: string): { migration: Migration; handle: MigrationHandle };
  close(): Promise<void>;
}

export async function openSession(
  o: GlobalOptions,
  out: Output,
  options: { install?: boolean } = {},
): Promise<Session> {
  const config = await loadConfig(o.config);
  const db = databaseSettings(o, config);
  const knex = knexFactory({
    client: 'pg',
    connection: { connectionString: db.url, connectionTimeoutMillis: 10_000, application_name: 'phaseflag-cli' },
    pool: { min: 0, max: 10 },
    acquireConnectionTimeout: 15_000,
    // knex prints its own warnings (e.g. "Connection Error: …" after a terminated backend) with console.log,
    // on stdout, where they would break a --json document: they go to stderr, shown with --verbose.
    log: knexLog(out),
  });
  const actor = `cli:${safeUser()}@${hostname()}:${process.pid}`;
  const pf = new Phaseflag({
    knex,
    ...(db.directUrl !== undefined ? { directUrl: db.directUrl } : {}),
    stateSchema: db.stateSchema,
    logger: cliLogger(out),
    actor,
    pollIntervalMs: 500,
    // As it happens, on stderr: a DDL step waiting behind a session says which one (expand, run, contract, …).
    onLockWait: (wait) => printLockWait(out, wait),
  });
  const close = async () => {
    await pf.close().catch(() => undefined);
    await knex.destroy().catch(() => undefined);
  };
  try {
    if (options.install !== false) await pf.install();
  } catch (error) {
    await close();
    throw error;
  }
  return {
    config,
    pf,
    knex,
    close,
    migration: (id) => {
      const migration = findMigration(config, id);
      return { migration, handle: pf.migration(migration) };
    },
  };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * A flag source over Unleash's client API, as a service would build it, for `status` and `run`. Null when Unleash
 * is not configured. Waits for the first answer (up to `waitMs`); the source says "unknown" until then.
 */
export async function openFlagSource(
  s: UnleashSettings,
  options: { refreshIntervalMs?: number; waitMs?: number; required?: boolean } = {},
): Promise<{ source: FlagSource; close: () => void; known: boolean; rejectedStatus?: 401 | 403 } | null> {
  if (!s.url || !s.apiToken) {
    if (!options.required) return null;
    throw new CliError(
      'PF_USAGE_NO_UNLEASH',
      'Unleash is not configured: the flags cannot be read.',
      "Pass --unleash-url and --unleash-api-token (a client token), or set UNLEASH_URL and UNLEASH_API_TOKEN, or the config's unleash.url and unleash.apiToken.",
    );
  }
  const refreshInterval = options.refreshIntervalMs ?? 1000;
  const source = new UnleashFlagSource({
    unleash: {
      url: `${s.url}/api`,
      appName: 'phaseflag-cli',
      environment: s.environment,
      refreshInterval,
      customHeaders: { Authorization: s.apiToken },
      disableMetrics: true,
      skipInstanceCountWarning: true,
      // The CLI reads what Unleash says now; a backup left by an earlier run would answer for it during an outage.
      storageProvider: new InMemStorageProvider(),
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const known = await source.whenKnown(options.waitMs ?? 10_000);
  const { rejectedStatus } = source.status();
  return { source, known, close: () => source.close(), ...(rejectedStatus ? { rejectedStatus } : {}) };
}

/** Why the flags are unknown: Unleash refused the client token (401/403), or did not answer within `waitedMs`. */
export function flagsUnknownError(
  s: UnleashSettings,
  flags: { rejectedStatus?: 401 | 403 },
  waitedMs: number,
): UnleashRejectedError | UnleashUnavailableError {
  const url = redactUrl(s.url ?? '');
  const request = 'GET /api/client/features';
  const where = `environment "${s.environment}"`;
  if (flags.rejectedStatus === 401)
    return new UnleashRejectedError(
      `Unleash at ${url} refused the client token (401 on ${request}): it knows no such token.`,
      {
        status: 401,
        body: '',
        request,
        hint: `Set UNLEASH_API_TOKEN (or --unleash-api-token, or the config's unleash.apiToken) to a backend (client) token of this Unleash for ${where}: Unleash UI, Admin → API access → New API token, type Backend. The admin token (UNLEASH_ADMIN_TOKEN) is for provisioning.`,
      },
    );
  if (flags.rejectedStatus === 403)
    return new UnleashRejectedError(
      `Unleash at ${url} refused the client token (403 on ${request}): the token may not read flags here.`,
      {
        status: 403,
        body: '',
        request,
        hint: `UNLEASH_API_TOKEN is known to Unleash but may not use the client API for ${where} (a frontend token, or one for another environment or project): create a backend (client) token for ${where} and project "${s.project}".`,
      },
    );
  return new UnleashUnavailableError(`Unleash at ${url} did not answer within ${Math.round(waitedMs / 1000)} s.`, {
    url: s.url ?? '',
    hint: 'Check UNLEASH_URL (the base URL, without /api) and that Unleash is up and reachable from here.',
  });
}
