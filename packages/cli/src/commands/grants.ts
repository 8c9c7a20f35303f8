import type { Command } from 'commander';
import { GRANT_ROLES, isGrantRole } from '@phaseflag/postgres';
import { CliError } from '../errors.js';
import { action } from '../program.js';
import { openSession } from '../runtime.js';

export function registerGrants(program: Command): void {
  program
    .command('grants')
    .description(
      "print the GRANT statements a database role needs to run phaseflag as a service, a controller or read-only, for the config's migrations and the state schema; runs nothing",
    )
    .requiredOption('--role <role>', `service | controller | readonly`)
    .requiredOption('--to <dbrole>', 'the database role to grant to')
    .argument('[id]', 'one migration (default: every migration in the config)')
    .addHelpText(
      'after',
      `
service:    the application embedding the router: DML on its tables; the state store's phase (SELECT on
            migrations, schema_version) and its heartbeats (instances).
controller: phaseflag run and every transition: membership in the tables' owner role (ADD COLUMN, indexes,
            triggers, DROP COLUMN), CREATE in the state schema (the sync function), DML on every state table.
readonly:   phaseflag status and history: SELECT only.
Run the output as a role that may grant these (the owner, or a superuser), after the state store is installed.`,
    )
    .action(
      action(async (out, opts, id: string | undefined) => {
        const role = opts.role;
        if (!isGrantRole(role)) {
          throw new CliError(
            'PF_USAGE_BAD_OPTION',
            `--role ${String(role)} is none of ${GRANT_ROLES.join(', ')}.`,
            'Pass --role service (the application), --role controller (phaseflag run, the transitions) or --role readonly (status, history).',
            role,
          );
        }
        const to = String(opts.to);
        const session = await openSession(opts, out, { install: false });
        try {
          const migrations = id ? [session.migration(id).migration] : session.config.migrations;
          const store = await session.pf.stateStore();
          if (!store.installed || store.version < store.latest)
            out.note(
              out.err.yellow(
                `The state store "${store.schema}" is ${store.installed ? `at version ${store.version} of ${store.latest}` : 'not installed'}: run \`phaseflag install\` as its owner before these GRANTs.`,
              ),
            );
          const sql = await session.pf.grants({ role, to, migrations });
          if (!out.json) process.stdout.write(sql);
          out.result({ role, to, stateSchema: session.pf.stateSchema, sql });
        } finally {
          await session.close();
        }
      }),
    );
}

export function registerInstall(program: Command): void {
  program
    .command('install')
    .description('create or upgrade the state store (idempotent); run it as the role that owns the state schema')
    .action(
      action(async (out, opts) => {
        const session = await openSession(opts, out, { install: false });
        try {
          const { from, to } = await session.pf.install();
          out.line(
            from === to
              ? `state store "${session.pf.stateSchema}" is at version ${to}`
              : `state store "${session.pf.stateSchema}": version ${from} → ${to}`,
          );
          out.result({ stateSchema: session.pf.stateSchema, from, to });
        } finally {
          await session.close();
        }
      }),
    );
}
