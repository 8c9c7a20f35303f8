/**
 * ServerOptions from environment variables, checked once: a wrong value stops the process with a message naming
 * the variable, before anything connects.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ServerOptions } from './service.js';

export function optionsFromEnv(env: NodeJS.ProcessEnv): ServerOptions {
  const int = (name: string, fallback: number | undefined, min: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min)
      throw new Error(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const onOff = (name: string, fallback: boolean): boolean => {
    const raw = (env[name] ?? '').trim().toLowerCase();
    if (raw === '') return fallback;
    if (['1', 'on', 'true', 'yes'].includes(raw)) return true;
    if (['0', 'off', 'false', 'no'].includes(raw)) return false;
    throw new Error(`${name} must be on or off, got ${JSON.stringify(env[name])}`);
  };
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) throw new Error('DATABASE_URL is not set (postgres://user:password@host:5432/database)');
  if (!env.UNLEASH_URL || !env.UNLEASH_API_TOKEN) {
    throw new Error(
      "UNLEASH_URL (Unleash's client API, e.g. http://localhost:4242/api) and UNLEASH_API_TOKEN (a client token) must be set",
    );
  }
  const options: ServerOptions = {
    databaseUrl,
    unleashUrl: env.UNLEASH_URL,
    unleashApiToken: env.UNLEASH_API_TOKEN,
    unleashRefreshMs: int('UNLEASH_REFRESH_MS', 15_000, 100),
    unleashAppName: env.UNLEASH_APP_NAME || 'orders-service',
    port: int('PORT', 0, 0),
    host: env.HOST || '127.0.0.1',
    instanceId: env.INSTANCE_ID || `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`,
    controller: onOff('PHASEFLAG_CONTROLLER', true),
    controllerIntervalMs: int('PHASEFLAG_CONTROLLER_INTERVAL_MS', 5000, 50),
    dropOldColumn: onOff('PHASEFLAG_DROP_OLD_COLUMN', false),
    seedRows: int('SEED_ROWS', undefined, 1),
  };
  if (env.PHASEFLAG_DIRECT_URL) options.directUrl = env.PHASEFLAG_DIRECT_URL;
  if (env.DB_SCHEMA) options.dbSchema = env.DB_SCHEMA;
  if (env.PHASEFLAG_STATE_SCHEMA) options.stateSchema = env.PHASEFLAG_STATE_SCHEMA;
  return options;
}
