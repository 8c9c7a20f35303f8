import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDACTED, ValidationError, redactUrl, systemClock, type Clock, type Logger } from '@phaseflag/core';
import type { Unleash, UnleashConfig } from 'unleash-client';
import { z } from 'zod';

const DEFAULT_REFRESH_INTERVAL_MS = 15_000; // unleash-client's own default

const isClient = (value: unknown): value is Unleash =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Unleash).isEnabled === 'function' &&
  typeof (value as Unleash).getFeatureToggleDefinition === 'function' &&
  typeof (value as Unleash).on === 'function';

const isConfig = (value: unknown): value is UnleashConfig =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as UnleashConfig).url === 'string' &&
  typeof (value as UnleashConfig).appName === 'string';

const optionsSchema = z
  .strictObject({
    /** Your own unleash-client instance (from `initialize()`, `startUnleash()` or `new Unleash()`). */
    client: z.custom<Unleash>(isClient, 'an unleash-client Unleash instance').optional(),
    /** Or its options: the source creates the client (`new Unleash(config)`) and destroys it on close(). */
    unleash: z.custom<UnleashConfig>(isConfig, 'unleash-client options with at least url and appName').optional(),
    /** Data older than this is unknown (the router reads old). Default 3 × the refresh interval. */
    staleAfterMs: z.number().int().min(1).optional(),
    /** The client's refreshInterval when you pass your own client (to derive staleAfterMs). Default 15 000. */
    refreshIntervalMs: z.number().int().min(1).optional(),
    /**
     * The client's backup file (`<backupPath>/unleash-backup-<appName>.json`). Data loaded from it counts as known
     * as of its mtime. Derived when the source creates the client with the file storage provider; without it, a
     * client that starts from its backup is unknown until Unleash answers.
     */
    backupFile: z.string().min(1).optional(),
    clock: z.custom<Clock>((v) => typeof (v as Clock)?.now === 'function', 'a Clock').optional(),
    logger: z.custom<Logger>((v) => typeof (v as Logger)?.warn === 'function', 'a Logger').optional(),
  })
  .refine((o) => (o.client === undefined) !== (o.unleash === undefined), 'pass exactly one of `client` and `unleash`');

export type UnleashFlagSourceOptions = z.input<typeof optionsSchema>;

export interface ResolvedSourceOptions {
  client: Unleash | undefined;
  config: UnleashConfig | undefined;
  staleAfterMs: number;
  backupFile: string | undefined;
  clock: Clock;
  logger: Logger;
  /** The custom header values (the client token) and the URL's password: scrubbed from every message. */
  secrets: string[];
}

export function resolveSourceOptions(input: UnleashFlagSourceOptions): ResolvedSourceOptions {
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    throw new ValidationError('PF_INVALID_OPTIONS', `Invalid UnleashFlagSource options: ${issues}.`, {
      value: shownOptions(input),
      hint: 'Pass { client: yourUnleash } or { unleash: { url, appName, customHeaders: { Authorization: clientToken } } }, and optionally staleAfterMs.',
    });
  }
  const o = parsed.data;
  const refreshInterval = o.unleash?.refreshInterval ?? o.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS;
  return {
    client: o.client,
    config: o.unleash,
    staleAfterMs: o.staleAfterMs ?? 3 * refreshInterval,
    backupFile: o.backupFile ?? (o.unleash ? defaultBackupFile(o.unleash) : undefined),
    clock: o.clock ?? systemClock,
    logger: o.logger ?? consoleWarnings,
    secrets: o.unleash ? secretsOf(o.unleash) : [],
  };
}

function secretsOf(config: UnleashConfig): string[] {
  const headers = Object.values(config.customHeaders ?? {}).filter((v): v is string => typeof v === 'string');
  const password = URL.canParse(config.url) ? decodeURIComponent(new URL(config.url).password) : '';
  return [...headers, password].filter((s) => s !== '');
}

/** The options as an error may show them: header values hidden, the URL without its password, no client object. */
function shownOptions(input: UnleashFlagSourceOptions): unknown {
  if (typeof input !== 'object' || input === null) return input;
  const { client, unleash, ...rest } = input as Record<string, unknown>;
  const shown: Record<string, unknown> = { ...rest };
  if (client !== undefined) shown.client = typeof client === 'object' ? '[client]' : client;
  if (typeof unleash === 'object' && unleash !== null) {
    const u = unleash as Record<string, unknown>;
    shown.unleash = {
      ...u,
      ...(typeof u.url === 'string' ? { url: redactUrl(u.url) } : {}),
      ...(typeof u.customHeaders === 'object' && u.customHeaders !== null
        ? { customHeaders: Object.fromEntries(Object.keys(u.customHeaders).map((k) => [k, REDACTED])) }
        : {}),
    };
  } else if (unleash !== undefined) shown.unleash = unleash;
  return shown;
}

/**
 * The default logger prints warnings and errors only. Listening to the client's `error` event silences the
 * client's own console output, so without this an outage would go unreported; the source logs once when
 * Unleash becomes unreachable and once when it is back, not on every poll.
 */
const consoleWarnings: Logger = {
  debug() {},
  info() {},
  warn: (message, fields) => console.warn(message, fields ?? ''),
  error: (message, fields) => console.error(message, fields ?? ''),
};

/** Where unleash-client's file storage provider writes (its FileStorageProvider: `unleash-backup-${safeName(appName)}.json`). */
function defaultBackupFile(config: UnleashConfig): string | undefined {
  if (config.storageProvider !== undefined) return undefined; // a custom provider: we cannot know the data's age
  return join(config.backupPath ?? tmpdir(), `unleash-backup-${config.appName.replace(/\//g, '_')}.json`);
}
