import { dirname, join } from 'node:path';

/**
 * `npm run bench -- [--quick] [--rows N] [--out FILE] [--lint-out FILE] [--json FILE] [--only 1,2,…] [--workers N]
 * [--render FILE]`
 */
export interface BenchArgs {
  quick: boolean;
  /** An extra, larger size (the 10M): runs after the default ones. */
  rows: number | null;
  out: string;
  /** Case 10's own results file (LINT-RESULTS.md). */
  lintOut: string;
  json: string | null;
  only: Set<number> | null;
  workers: number | null;
  /** Re-render the report from a --json file of an earlier run; measures nothing. */
  render: string | null;
}

/**
 * `defaults.out` is where a full run writes; a quick run writes to `defaults.quickOut` unless --out says otherwise,
 * so a smoke run never replaces the real results.
 */
export function parseArgs(
  argv: readonly string[],
  defaults: { out: string; quickOut: string; lintOut: string; quickLintOut: string },
): BenchArgs {
  const args: BenchArgs = {
    quick: false,
    rows: null,
    out: '',
    lintOut: '',
    json: null,
    only: null,
    workers: null,
    render: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--rows') args.rows = positiveInt(a, value().replace(/_/g, ''));
    else if (a === '--out') args.out = value();
    else if (a === '--lint-out') args.lintOut = value();
    else if (a === '--json') args.json = value();
    else if (a === '--workers') args.workers = positiveInt(a, value());
    else if (a === '--render') args.render = value();
    else if (a === '--only')
      args.only = new Set(
        value()
          .split(',')
          .map((x) => positiveInt(a, x)),
      );
    else
      throw new Error(
        `unknown option ${a} (use --quick, --rows N, --out FILE, --lint-out FILE, --json FILE, --only 1,2,…, --workers N, --render FILE)`,
      );
  }
  // Case 10's file goes beside an --out given (a smoke run's temporary folder), else to its own default.
  args.lintOut ||= args.out
    ? join(dirname(args.out), 'LINT-RESULTS.md')
    : args.quick
      ? defaults.quickLintOut
      : defaults.lintOut;
  args.out ||= args.quick ? defaults.quickOut : defaults.out;
  return args;
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} takes a positive integer, got ${JSON.stringify(v)}`);
  return n;
}
