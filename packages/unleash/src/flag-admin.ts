import { ValidationError } from '@phaseflag/core';
import { AdminApi } from './admin-api.js';
import { parseAdminOptions, type ProvisionAdminOptions } from './provision.js';

/**
 * What an operator does to a migration's flags in the Unleash UI, through the Admin API it calls: turn a flag on
 * or off, move read-new's gradual rollout. For scripts, demos and a person's local stack; in production people
 * usually click. Options as `provisionFlags` takes them (url, admin token, project, environment), checked once here.
 */
export class UnleashFlagAdmin {
  private readonly api: AdminApi;
  readonly project: string;
  readonly environment: string;

  constructor(options: ProvisionAdminOptions) {
    const o = parseAdminOptions(options);
    this.api = new AdminApi({ url: o.url, token: o.token, timeoutMs: o.timeoutMs });
    this.project = o.project;
    this.environment = o.environment;
  }

  /** Turns `flag` on in the environment (its strategies decide for whom: provisioned flags have their rollout). */
  async enable(flag: string): Promise<void> {
    await this.api.setEnabled(this.project, flag, this.environment, true);
  }

  async disable(flag: string): Promise<void> {
    await this.api.setEnabled(this.project, flag, this.environment, false);
  }

  /**
   * Moves the flag's gradual rollout (`flexibleRollout`) to `percent` (0-100): the strategy `strategyId`, or the
   * flag's only one in the environment (the one `provisionFlags` added). Users keep their bucket as it grows.
   */
  async setRollout(flag: string, percent: number, options: { strategyId?: string } = {}): Promise<void> {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
      throw new ValidationError('PF_INVALID_OPTIONS', `A rollout of ${String(percent)}% is not a whole percentage.`, {
        value: percent,
        hint: 'Pass a whole number from 0 to 100.',
      });
    }
    const strategyId = options.strategyId ?? (await this.onlyRollout(flag));
    await this.api.patchStrategy(this.project, flag, this.environment, strategyId, [
      { op: 'replace', path: '/parameters/rollout', value: String(percent) },
    ]);
  }

  private async onlyRollout(flag: string): Promise<string> {
    const feature = await this.api.getFeature(this.project, flag);
    const rollouts =
      feature?.environments
        .find((e) => e.name === this.environment)
        ?.strategies.filter((s) => s.name === 'flexibleRollout') ?? [];
    if (rollouts.length !== 1) {
      throw new ValidationError(
        'PF_INVALID_OPTIONS',
        `${feature ? `Flag "${flag}" has ${rollouts.length} gradual rollouts` : `No flag "${flag}" in project "${this.project}"`} in environment "${this.environment}": which one to move is not clear.`,
        {
          value: flag,
          hint: feature
            ? 'Pass { strategyId } (provisionFlags reports the one it added).'
            : 'Provision the migration first (provisionFlags, `phaseflag provision`).',
        },
      );
    }
    return rollouts[0]!.id;
  }
}
