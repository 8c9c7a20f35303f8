import { redactUrl } from '@phaseflag/core';
import { provisionFlags } from '@phaseflag/unleash';
import type { Command } from 'commander';
import { loadConfig, findMigration } from '../config.js';
import { CliError } from '../errors.js';
import { action } from '../program.js';
import { table as newTable } from '../output.js';
import { unleashSettings } from '../runtime.js';

export function registerProvision(program: Command): void {
  program
    .command('provision')
    .argument('<id>', 'migration id (from the config)')
    .description(
      "create the migration's four flags in Unleash (off, described, tagged, with a gradual rollout); a rerun changes nothing",
    )
    .action(
      action(async (out, opts, id: string) => {
        const config = await loadConfig(opts.config);
        const migration = findMigration(config, id);
        const s = unleashSettings(opts, config);
        if (!s.url || !s.adminToken) {
          throw new CliError(
            'PF_USAGE_NO_UNLEASH',
            "Provisioning needs Unleash's URL and an admin token.",
            'Pass --unleash-url and --unleash-admin-token, or set UNLEASH_URL and UNLEASH_ADMIN_TOKEN (an admin token or a personal access token).',
          );
        }
        const report = await provisionFlags(migration, {
          url: s.url,
          token: s.adminToken,
          project: s.project,
          environment: s.environment,
        });
        const { c } = out;
        const table = newTable(out, { head: ['flag', 'status', 'notes'], wordWrap: true, colWidths: [34, 10, 60] });
        for (const f of report.flags)
          table.push([
            f.name,
            f.status === 'existing' ? c.yellow('existing') : c.green(f.status),
            f.warnings.join('\n') ||
              (f.status === 'created'
                ? `off; rollout ${f.role === 'readNew' ? '0' : '100'}% in ${report.environment}`
                : f.status === 'completed'
                  ? `created by a run cut short: its ${f.strategyId ? 'rollout and ' : ''}tag added`
                  : 'left as it is'),
          ]);
        out.line(
          `Unleash ${redactUrl(s.url)} · project ${report.project} · environment ${report.environment} · tag ${report.tag.type}:${report.tag.value}`,
        );
        out.line(table.toString());
        out.line(
          c.dim(
            report.created.length + report.completed.length > 0
              ? `${report.created.length} created, ${report.completed.length > 0 ? `${report.completed.length} completed, ` : ''}${report.existing.length} existing.`
              : 'Nothing to do: every flag exists.',
          ),
        );
        out.result(report);
      }),
    );
}
