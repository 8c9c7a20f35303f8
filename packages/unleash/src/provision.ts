import { PHASE_FLAGS, REDACTED, ValidationError, redactUrl, type Migration } from '@phaseflag/core';
import { z } from 'zod';
import { AdminApi, type AdminFeature } from './admin-api.js';
import { UnleashRejectedError } from './errors.js';
import { describeFlag, migrationTag, type ProvisionedRole } from './flag-descriptions.js';

const adminSchema = z.strictObject({
  /** Unleash's base URL (what you open in a browser, without `/api`). */
  url: z.url(),
  /** An admin API token (`*:*.<secret>`) or a personal access token. */
  token: z.string().min(1),
  project: z.string().min(1).default('default'),
  /** The environment whose strategies are set up (flags are created off in every environment). */
  environment: z.string().min(1).default('development'),
  /** Unleash flag type. `operational`: Unleash's type for transitional operational switches such as migrations. */
  flagType: z.enum(['release', 'experiment', 'operational', 'kill-switch', 'permission']).default('operational'),
  timeoutMs: z.number().int().min(1).default(10_000),
});

export type ProvisionAdminOptions = z.input<typeof adminSchema>;

export interface ProvisionedFlag {
  role: ProvisionedRole;
  name: string;
  /**
   * `created` by this run; `completed`: created by an earlier run that was cut short (the Admin API failed), and
   * given here the strategy or tag that run did not add; `existing` and left exactly as it was.
   */
  status: 'created' | 'completed' | 'existing';
  /** The flexibleRollout strategy this run added (created flags, and completed ones that lacked it). */
  strategyId?: string;
  /** Things an operator should know about an existing flag (it is not changed). */
  warnings: string[];
}

export interface ProvisionReport {
  migrationId: string;
  project: string;
  environment: string;
  tag: { type: string; value: string };
  flags: ProvisionedFlag[];
  created: string[];
  completed: string[];
  existing: string[];
}

/**
 * Creates the migration's four flags (five with `shadow`: its shadow-reads flag, at 100%) in Unleash through the Admin API, each off, described, tagged, and with a
 * gradual-rollout strategy in `environment`: 0% for read-new (stickiness `default`, group = flag name, so a user
 * keeps their bucket as the rollout grows), 100% for the others. The strategy goes in before anything can turn
 * the flag on: turning on a flag with no strategy makes Unleash add a 100% rollout of its own, which for
 * read-new would be everyone at once.
 *
 * Idempotent: a flag that exists in the project is left exactly as the operator set it (no description, tag or
 * strategy change) and reported as `existing`. A second run therefore changes nothing.
 */
export async function provisionFlags(migration: Migration, admin: ProvisionAdminOptions): Promise<ProvisionReport> {
  const o = parseAdminOptions(admin);
  const api = new AdminApi({ url: o.url, token: o.token, timeoutMs: o.timeoutMs });
  const tag = migrationTag(migration);
  await preflight(api, o.project, o.environment);

  const flags: ProvisionedFlag[] = [];
  let tagTypeChecked = false;
  const roles: { role: ProvisionedRole; name: string }[] = PHASE_FLAGS.map((role) => ({
    role,
    name: migration.flags[role],
  }));
  if (migration.shadow) roles.push({ role: 'shadow', name: migration.shadow.flag });
  for (const { role, name } of roles) {
    const description = describeFlag(migration, role);
    const ensureTagType = async () => {
      if (!tagTypeChecked && !(await api.tagTypeExists(tag.type)))
        await api.createTagType(tag.type, 'Used to simplify filtering of features');
      tagTypeChecked = true;
    };
    const strategy = {
      name: 'flexibleRollout',
      parameters: { rollout: role === 'readNew' ? '0' : '100', stickiness: 'default', groupId: name },
    };
    const existing = await api.getFeature(o.project, name);
    if (existing) {
      const unfinished = await unfinishedParts(api, existing, description, o.environment, tag);
      if (unfinished.strategy || unfinished.tag) {
        // Created by an earlier run that was cut short (its description is ours, it is off, and it lacks what
        // that run adds after creating it): finish the job rather than leave a flag without its gradual rollout.
        const strategyId = unfinished.strategy
          ? await api.addStrategy(o.project, name, o.environment, strategy)
          : undefined;
        if (unfinished.tag) {
          await ensureTagType();
          await api.addTag(name, tag);
        }
        flags.push({ role, name, status: 'completed', ...(strategyId ? { strategyId } : {}), warnings: [] });
        continue;
      }
      flags.push({ role, name, status: 'existing', warnings: warningsFor(existing, role, o.environment) });
      continue;
    }
    await ensureTagType();
    try {
      await api.createFeature(o.project, { name, description, type: o.flagType });
    } catch (error) {
      throw nameTaken(error, name, o.project) ?? error;
    }
    // Strategy first, tag second: a run cut short between the two leaves a flag that is safe to turn on, and the
    // next run finishes it (unfinishedParts).
    const strategyId = await api.addStrategy(o.project, name, o.environment, strategy);
    await api.addTag(name, tag);
    flags.push({ role, name, status: 'created', strategyId, warnings: [] });
  }
  return {
    migrationId: migration.id,
    project: o.project,
    environment: o.environment,
    tag,
    flags,
    created: flags.filter((f) => f.status === 'created').map((f) => f.name),
    completed: flags.filter((f) => f.status === 'completed').map((f) => f.name),
    existing: flags.filter((f) => f.status === 'existing').map((f) => f.name),
  };
}

export function parseAdminOptions(admin: ProvisionAdminOptions): z.output<typeof adminSchema> {
  const parsed = adminSchema.safeParse(admin);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new ValidationError('PF_INVALID_OPTIONS', `Invalid Unleash admin options: ${issues}.`, {
    value: {
      ...admin,
      token: admin?.token ? REDACTED : admin?.token,
      ...(typeof admin?.url === 'string' ? { url: redactUrl(admin.url) } : {}),
    },
    hint: 'Pass { url: "https://unleash.example.com", token: "<admin token>", project?: "default", environment?: "development" }.',
  });
}

/** Fails before creating anything when the project or environment is missing, so no half-provisioned flags. */
async function preflight(api: AdminApi, project: string, environment: string): Promise<void> {
  // Both lookups answer 404 for a missing name; AdminApi turns any other refusal (401, 403) into its error.
  const [projectFound, environmentFound] = await Promise.all([
    api.exists(`api/admin/projects/${encodeURIComponent(project)}`),
    api.exists(`api/admin/environments/${encodeURIComponent(environment)}`),
  ]);
  for (const [found, what, name] of [
    [projectFound, 'project', project],
    [environmentFound, 'environment', environment],
  ] as const) {
    if (found) continue;
    throw new UnleashRejectedError(`Unleash at ${api.url} has no ${what} "${name}".`, {
      status: 404,
      body: '',
      request: `GET ${what} ${name}`,
      value: name,
      hint: `Create the ${what} in Unleash first, or pass the ${what} your flags live in (a fresh server has project "default" and environments "development" and "production").`,
    });
  }
}

/**
 * What a run cut short left out of a flag it created: the strategy (only while the flag is off and has none in
 * the environment) and the migration's tag. A flag whose description is not the one phaseflag writes is someone
 * else's, and is left exactly as it is.
 */
async function unfinishedParts(
  api: AdminApi,
  feature: AdminFeature,
  description: string,
  environment: string,
  tag: { type: string; value: string },
): Promise<{ strategy: boolean; tag: boolean }> {
  if ((feature.description ?? '') !== description) return { strategy: false, tag: false };
  const env = feature.environments.find((e) => e.name === environment);
  const strategy = env !== undefined && !env.enabled && env.strategies.length === 0;
  const tags = await api.getTags(feature.name);
  return { strategy, tag: !tags.some((t) => t.type === tag.type && t.value === tag.value) };
}

function warningsFor(feature: AdminFeature, role: ProvisionedRole, environment: string): string[] {
  const env = feature.environments.find((e) => e.name === environment);
  if (!env)
    return [`"${feature.name}" is not available in environment "${environment}" of project "${feature.project}".`];
  const warnings: string[] = [];
  if (env.strategies.length === 0) {
    warnings.push(
      `"${feature.name}" has no strategy in "${environment}": turning it on makes Unleash add a 100% rollout of its own${role === 'readNew' ? " (every user's reads move at once)" : ''}. Add a gradual rollout first.`,
    );
  }
  if (env.enabled)
    warnings.push(`"${feature.name}" is already on in "${environment}"; phaseflag's guards still decide what happens.`);
  return warnings;
}

/** A 409 on create: the name belongs to an archived flag or to a flag in another project. */
function nameTaken(error: unknown, name: string, project: string): UnleashRejectedError | undefined {
  if (!(error instanceof UnleashRejectedError) || error.status !== 409) return undefined;
  const archived = /archived/i.test(error.body);
  return new UnleashRejectedError(
    `Flag "${name}" cannot be created in project "${project}": ${archived ? 'an archived flag has that name' : 'another project has a flag with that name'}.`,
    {
      status: 409,
      body: error.body,
      request: error.request,
      value: name,
      cause: error,
      hint: archived
        ? 'Revive it from the archive (it comes back off, with its old strategies: check them) or delete it from the archive, then run provisioning again.'
        : "Flag names are unique across projects: move that flag, or give this migration's flags other names with `flags: { ... }` in defineMigration.",
    },
  );
}
