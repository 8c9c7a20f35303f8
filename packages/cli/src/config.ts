import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defineMigration, isPhaseflagError, StateError, type Migration, type MigrationInput } from '@phaseflag/core';
import { z } from 'zod';
import { CliError } from './errors.js';

/** What a `phaseflag.config.ts` exports (default export, or a named `config`). */
export interface PhaseflagConfig {
  /** Every migration the CLI may act on, by id; required by every command but `lint`. */
  migrations?: ReadonlyArray<Migration | MigrationInput>;
  database?: {
    /** Overridden by --database-url and DATABASE_URL. */
    url?: string;
    /**
     * The database's own address for the operator side (DDL, backfill, verify, controller) when `url` goes through
     * a transaction pooler. Overridden by --direct-url and PHASEFLAG_DIRECT_URL.
     */
    directUrl?: string;
    /** Schema of phaseflag's own tables (default `phaseflag`). */
    stateSchema?: string;
  };
  /** `phaseflag lint`'s settings (README "Lint"); lint works without them, and without any config file. */
  lint?: LintConfig;
  unleash?: {
    /** Unleash's base URL, without `/api`. Overridden by --unleash-url and UNLEASH_URL. */
    url?: string;
    /** A client token: what `status` and `run` read flags with (UNLEASH_API_TOKEN). */
    apiToken?: string;
    /** An admin token or personal access token: what `provision` creates flags with (UNLEASH_ADMIN_TOKEN). */
    adminToken?: string;
    /** Default `default`. */
    project?: string;
    /** Default `development`. */
    environment?: string;
  };
}

export interface LintConfig {
  /** Rules never reported (an unknown name is PF_LINT_UNKNOWN_RULE, exit 2). */
  exclude?: string[];
  /** Plain .sql files run inside one transaction (knex migrations say it themselves). */
  assumeInTransaction?: boolean;
  /** The PostgreSQL major version the SQL will run on (default 17); a database given with --database-url wins. */
  pgVersion?: number;
  /** With a database: below both limits a table is small, and a blocking statement on it is no finding. */
  smallTable?: { maxRows?: number; maxBytes?: number };
}

/** Types the config file; returns it as is. */
export function defineConfig(config: PhaseflagConfig): PhaseflagConfig {
  return config;
}

/** Looked up in this order in the working directory. */
export const CONFIG_FILES = [
  'phaseflag.config.ts',
  'phaseflag.config.mts',
  'phaseflag.config.js',
  'phaseflag.config.mjs',
  'phaseflag.config.cjs',
] as const;

const lintSchema = z.strictObject({
  exclude: z.array(z.string()).optional(),
  assumeInTransaction: z.boolean().optional(),
  pgVersion: z.number().int().min(9).max(99).optional(),
  smallTable: z
    .strictObject({ maxRows: z.number().int().min(0).optional(), maxBytes: z.number().int().min(0).optional() })
    .optional(),
});

const configSchema = z.object({
  migrations: z.array(z.unknown()).min(1, 'declare at least one migration'),
  lint: lintSchema.optional(),
  database: z
    .strictObject({
      url: z.string().min(1).optional(),
      directUrl: z.string().min(1).optional(),
      stateSchema: z.string().min(1).optional(),
    })
    .optional(),
  unleash: z
    .strictObject({
      url: z.string().min(1).optional(),
      apiToken: z.string().min(1).optional(),
      adminToken: z.string().min(1).optional(),
      project: z.string().min(1).optional(),
      environment: z.string().min(1).optional(),
    })
    .optional(),
});

export interface LoadedConfig {
  file: string;
  migrations: Migration[];
  database: NonNullable<PhaseflagConfig['database']>;
  unleash: NonNullable<PhaseflagConfig['unleash']>;
  lint: LintConfig;
}

/** Finds the config (the given file, else the first of CONFIG_FILES in cwd), loads it (TypeScript through tsx) and validates it. */
export async function loadConfig(
  file: string | undefined,
  cwd = process.cwd(),
  options: { migrationsOptional?: boolean } = {},
): Promise<LoadedConfig> {
  const path = file ? resolve(cwd, file) : CONFIG_FILES.map((f) => resolve(cwd, f)).find((f) => existsSync(f));
  if (!path || !existsSync(path)) {
    throw new CliError(
      'PF_CONFIG_NOT_FOUND',
      file
        ? `Config file ${path} does not exist.`
        : `No phaseflag config in ${cwd} (looked for ${CONFIG_FILES.join(', ')}).`,
      'Run `phaseflag init` to write one, run from the directory that has it, or pass --config <file>.',
      path ?? cwd,
    );
  }
  const raw = await importConfig(path);
  // `phaseflag lint` reads plain SQL and knex files: a config that only holds its lint section (or declares no
  // migration yet) is enough for it.
  const schema = options.migrationsOptional
    ? configSchema.extend({ migrations: z.array(z.unknown()).default([]) })
    : configSchema;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new CliError(
      'PF_CONFIG_INVALID',
      `${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}.`,
      'Export defineConfig({ migrations: [...], database?: { url, directUrl, stateSchema }, unleash?: { url, apiToken, adminToken, project, environment }, lint?: { exclude, assumeInTransaction, pgVersion, smallTable } }).',
      path,
    );
  }
  const migrations = parsed.data.migrations.map((m, i) => {
    // A migration built with defineMigration() is normalized and frozen already; defining it again would fail.
    if (isDefined(m)) return m;
    try {
      return defineMigration(m as MigrationInput);
    } catch (error) {
      if (isPhaseflagError(error))
        throw new CliError('PF_CONFIG_INVALID', `${path}: migrations[${i}]: ${error.message}`, error.hint, error.value);
      throw error;
    }
  });
  const ids = new Set<string>();
  for (const m of migrations) {
    if (ids.has(m.id))
      throw new CliError(
        'PF_CONFIG_INVALID',
        `${path}: two migrations have the id "${m.id}".`,
        'Give each migration its own id.',
        m.id,
      );
    ids.add(m.id);
  }
  return {
    file: path,
    migrations,
    database: parsed.data.database ?? {},
    unleash: parsed.data.unleash ?? {},
    lint: parsed.data.lint ?? {},
  };
}

function isDefined(m: unknown): m is Migration {
  return typeof m === 'object' && m !== null && Object.isFrozen(m) && Array.isArray((m as Migration).primaryKey);
}

async function importConfig(path: string): Promise<unknown> {
  let mod: Record<string, unknown>;
  try {
    // tsx compiles TypeScript (and resolves `./x.js` to `./x.ts`) on the fly: no build step for the config.
    const { tsImport } = await import('tsx/esm/api');
    mod = (await tsImport(pathToFileURL(path).href, import.meta.url)) as Record<string, unknown>;
  } catch (error) {
    const message = (error as Error).message;
    // The starter config imports @phaseflag/cli and @phaseflag/core: in a project that has not installed them the
    // config cannot load, and the fix is an install, not an edit.
    const missing = /Cannot find (?:module|package) '(@phaseflag\/[a-z-]+)'/.exec(message)?.[1];
    const hint = missing
      ? `Install the phaseflag packages in this project: npm install --save-dev @phaseflag/cli @phaseflag/core (${missing} is missing).`
      : 'Fix the error in the config file (or a file it imports).';
    throw new CliError('PF_CONFIG_INVALID', `Cannot load ${path}: ${message}`, hint, path);
  }
  // ESM default, a named `config`, or a CommonJS module.exports (seen as default, possibly nested once).
  let value: unknown = mod.default ?? mod.config ?? mod;
  if (value && typeof value === 'object' && 'default' in value && !('migrations' in value) && !('lint' in value))
    value = value.default;
  return value;
}

export function findMigration(config: LoadedConfig, id: string): Migration {
  const m = config.migrations.find((x) => x.id === id);
  if (!m) {
    throw new StateError('PF_UNKNOWN_MIGRATION', `No migration "${id}" in ${config.file}.`, {
      value: id,
      migrationId: id,
      hint: `Known ids: ${config.migrations.map((x) => x.id).join(', ')}.`,
    });
  }
  return m;
}
