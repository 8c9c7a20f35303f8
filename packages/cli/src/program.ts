import { Command, CommanderError, Option } from 'commander';
import { CliError } from './errors.js';
import { EXIT } from './exit-codes.js';
import { Output } from './output.js';
import type { GlobalOptions } from './runtime.js';

/** What an action returns: its exit code (0 when it returns nothing). */
export type ActionResult = number | void;

/**
 * Wraps a command's action: builds the output from the global options, turns any error into `CODE: message` +
 * hint (and `{ "error": … }` with --json) and the exit code of its family, and sets process.exitCode.
 */
export function action<A extends unknown[]>(
  fn: (out: Output, opts: GlobalOptions & Record<string, unknown>, ...args: A) => Promise<ActionResult>,
) {
  return async (...raw: unknown[]): Promise<void> => {
    const cmd = raw[raw.length - 1] as Command;
    const opts = cmd.optsWithGlobals<GlobalOptions & Record<string, unknown>>();
    const out = new Output(opts.json === true, opts.verbose === true);
    const args = raw.slice(0, -2) as A;
    try {
      process.exitCode = (await fn(out, opts, ...args)) ?? EXIT.ok;
    } catch (error) {
      process.exitCode = out.error(error);
    }
  };
}

export function createProgram(version: string): Command {
  const program = new Command('phaseflag')
    .description('Zero-downtime PostgreSQL column changes, phase by phase, driven by Unleash flags.')
    .version(version, '-V, --version')
    .addOption(
      new Option('-c, --config <file>', 'config file (default: phaseflag.config.ts/.js in the working directory)'),
    )
    .addOption(new Option('--database-url <url>', 'PostgreSQL connection string').env('DATABASE_URL'))
    .addOption(
      new Option(
        '--direct-url <url>',
        "the database's own address for migration steps, when --database-url goes through a transaction pooler",
      ).env('PHASEFLAG_DIRECT_URL'),
    )
    .addOption(
      new Option(
        '--state-schema <schema>',
        'schema of phaseflag\'s own tables (default: config, else "phaseflag")',
      ).env('PHASEFLAG_STATE_SCHEMA'),
    )
    .addOption(new Option('--unleash-url <url>', 'Unleash base URL, without /api').env('UNLEASH_URL'))
    .addOption(new Option('--unleash-api-token <token>', 'Unleash client token (status, run)').env('UNLEASH_API_TOKEN'))
    .addOption(
      new Option('--unleash-admin-token <token>', 'Unleash admin token (provision)').env('UNLEASH_ADMIN_TOKEN'),
    )
    .addOption(new Option('--unleash-project <project>', 'Unleash project (default: "default")').env('UNLEASH_PROJECT'))
    .addOption(
      new Option('--unleash-environment <env>', 'Unleash environment (default: "development")').env(
        'UNLEASH_ENVIRONMENT',
      ),
    )
    .option('--json', 'print one JSON document on stdout (shapes: README); errors too')
    .option('--no-color', 'no colour (also NO_COLOR=1); colour is used only on a terminal')
    .option('-v, --verbose', 'engine logs and stack traces on stderr')
    // commander's own usage errors (unknown option or command, missing argument) are reported by run() below,
    // with a code like every other refusal, so they are not written here as well.
    .configureOutput({ outputError: () => undefined })
    .exitOverride();
  return program;
}

/** Parses and runs; commander's own errors (unknown option, missing argument) exit with the usage code. */
export async function run(program: Command, argv: readonly string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      if (error.exitCode === 0) {
        process.exitCode = EXIT.ok;
        return;
      }
      // An unknown option or command, a missing argument: PF_USAGE_BAD_OPTION (exit 2), as text or as the --json
      // error document, so a script reads the same shape for every refusal.
      const json = argv.includes('--json');
      const message = error.message.replace(/^error: /, '');
      const usage = new CliError(
        'PF_USAGE_BAD_OPTION',
        `${message.charAt(0).toUpperCase()}${message.slice(1)}.`,
        '`phaseflag --help` lists the commands, `phaseflag <command> --help` their options.',
        argv.slice(2).join(' '),
      );
      process.exitCode = new Output(json, argv.includes('--verbose') || argv.includes('-v')).error(usage);
      return;
    }
    throw error;
  }
}

/**
 * A whole-number option read from the command line, checked before the command touches anything: absent gives
 * `undefined`; anything but an integer from `min` to `max` is PF_USAGE_BAD_OPTION (exit 2).
 */
export function integerOption(
  value: unknown,
  flag: string,
  min: number,
  max: number,
  unit: string,
): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new CliError(
      'PF_USAGE_BAD_OPTION',
      `${flag} ${text} is not a whole number of ${unit} from ${min} to ${max}.`,
      `Pass e.g. ${flag} ${Math.max(min, Math.min(max, 1000))}.`,
      text,
    );
  }
  return n;
}
