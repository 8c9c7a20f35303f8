import { redactUrl } from '@phaseflag/core';
import { provisionFlags } from '@phaseflag/unleash';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { CliError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { interruptSignal } from '../interrupt.js';
import { importLocal, type LocalModule } from '../local-module.js';
import { action, integerOption } from '../program.js';
import { openSession } from '../runtime.js';

type LocalStack = Awaited<ReturnType<LocalModule['startLocalStack']>>;

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description(
      "PostgreSQL and Unleash on this machine for development: the state store installed, the config's flags provisioned; prints where to connect; Ctrl-C stops and removes everything",
    )
    .option('--postgres-port <port>', 'the embedded PostgreSQL listens here (default: a free port)')
    .option('--unleash-port <port>', 'Unleash (API and web UI) listens here (default: a free port)')
    .addHelpText(
      'after',
      `
Starts an embedded PostgreSQL 17 (database "app") and a real unleash-server 6.10 in this process, on a database of
its own on that server; installs phaseflag's state store and provisions every migration of the config (its four
flags off, with their rollouts, in project "default", environment "development"). Then it prints, on stdout, the
variables an application and the other phaseflag commands read, as lines a shell can source, and stays up:

  export DATABASE_URL='postgres://postgres:postgres@127.0.0.1:54011/app'
  export UNLEASH_URL='http://127.0.0.1:4242/api'
  export UNLEASH_API_TOKEN='default:development.…'
  export UNLEASH_ADMIN_TOKEN='*:*.…'

What it started, the web UI and its login go to stderr. With --json, one document on stdout instead. Ctrl-C (or
SIGTERM) stops Unleash, drops its database, stops PostgreSQL and deletes its data directory, then exits 130
(the error and its exit code if something could not be removed). Only an explicit --database-url (not DATABASE_URL from the environment,
which may name another server) makes it use an existing PostgreSQL instead of the embedded one: the state store
and Unleash's own database (unleash_<hex>, dropped at the end) then go there.

Examples:
  phaseflag dev > .env.dev                    # in another shell: source .env.dev; phaseflag status
  phaseflag dev --unleash-port 4242           # the UI at http://127.0.0.1:4242 (admin / unleash4all)
  phaseflag dev --database-url postgres://me@127.0.0.1:5432/app --json`,
    )
    .action(
      action(async (out, opts) => {
        const postgresPort = integerOption(opts.postgresPort, '--postgres-port', 1, 65_535, 'a port');
        const unleashPort = integerOption(opts.unleashPort, '--unleash-port', 1, 65_535, 'a port');
        // DATABASE_URL in a developer's shell may be anything (a staging server, an earlier run's): only the flag.
        const databaseUrl = program.getOptionValueSource('databaseUrl') === 'cli' ? opts.databaseUrl : undefined;
        const config = await loadConfig(opts.config);
        const local = await importLocal({
          message: '`phaseflag dev` starts PostgreSQL and Unleash from it:',
          hint: 'Install it next to the CLI: ',
        });
        const interrupt = interruptSignal(() => out.note('stopping…'));
        let stack: LocalStack | undefined;
        try {
          out.note('starting PostgreSQL and Unleash (the first start of Unleash creates its tables: ~10 s)…');
          stack = await startStack(local, { databaseUrl, postgresPort, unleashPort });
          const { unleash } = stack;
          const session = await openSession({ ...opts, databaseUrl: stack.databaseUrl }, out);
          const stateSchema = session.pf.stateSchema;
          await session.close();
          const provisioned: Array<{ migration: string; created: string[] }> = [];
          for (const migration of config.migrations) {
            interrupt.signal.throwIfAborted();
            const report = await provisionFlags(migration, {
              url: unleash.url,
              token: unleash.adminToken,
              project: unleash.project,
              environment: unleash.environment,
            });
            provisioned.push({ migration: migration.id, created: report.created });
          }
          const where = stack.postgres
            ? `an embedded PostgreSQL on 127.0.0.1:${stack.postgres.port}, database ${stack.postgres.database}`
            : `${redactUrl(stack.databaseUrl)} (--database-url)`;
          out.note(`postgres   ${where}; state store "${stateSchema}" installed`);
          out.note(`unleash    ${unleash.url} (in-process unleash-server 6.10, its database ${unleash.database})`);
          out.note(`  web UI   ${unleash.url}  login ${unleash.login.username} / ${unleash.login.password}`);
          out.note(
            `  flags    ${provisioned.map((p) => `${p.migration} (${p.created.length} created)`).join(', ') || 'no migration in the config'}; project ${unleash.project}, environment ${unleash.environment}`,
          );
          for (const [name, value] of Object.entries(stack.env)) out.line(`export ${name}=${shellQuote(value)}`);
          out.result({
            databaseUrl: stack.databaseUrl,
            postgres: stack.postgres ? { port: stack.postgres.port, database: stack.postgres.database } : null,
            stateSchema,
            unleash: {
              url: unleash.url,
              apiUrl: unleash.apiUrl,
              adminToken: unleash.adminToken,
              clientToken: unleash.clientToken,
              project: unleash.project,
              environment: unleash.environment,
              database: unleash.database,
              login: unleash.login,
            },
            env: stack.env,
            provisioned,
          });
          out.note('ready. Ctrl-C stops everything and removes it.');
          await new Promise<void>((resolve) => {
            if (interrupt.signal.aborted) resolve();
            interrupt.signal.addEventListener('abort', () => resolve(), { once: true });
          });
        } catch (error) {
          if (!interrupt.signal.aborted) throw error;
        } finally {
          interrupt.dispose();
          await stack?.stop();
        }
        out.note('stopped: nothing left running, no data directory, no Unleash database.');
        return EXIT.interrupted;
      }),
    );
}

/** The stack, with the errors of @phaseflag/local in the CLI's codes. */
async function startStack(
  local: LocalModule,
  o: { databaseUrl?: string; postgresPort?: number; unleashPort?: number },
): Promise<LocalStack> {
  try {
    return await local.startLocalStack({
      ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}),
      ...(o.postgresPort !== undefined ? { postgresPort: o.postgresPort } : {}),
      ...(o.unleashPort !== undefined ? { unleashPort: o.unleashPort } : {}),
    });
  } catch (error) {
    if (!(error instanceof local.LocalError)) throw error;
    const [message] = error.message.split('\n  hint: ');
    throw new CliError(
      error.code === 'PF_LOCAL_BAD_OPTION' ? 'PF_USAGE_BAD_OPTION' : 'PF_LOCAL_START',
      message!,
      error.hint,
    );
  }
}

/** One word for sh, bash and zsh: single quotes, an embedded one as '\''. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}
