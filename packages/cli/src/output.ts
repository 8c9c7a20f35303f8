import Table from 'cli-table3';
import pc from 'picocolors';
import { describeError, type ErrorReport } from './errors.js';

type Colors = ReturnType<typeof pc.createColors>;

/**
 * Colour only on a terminal: NO_COLOR or --no-color turn it off, FORCE_COLOR (not 0) forces it on, otherwise it
 * follows whether the stream is a TTY. (picocolors' own default also turns colour on under CI with pipes, which
 * would put escape codes in a script's captured output.)
 */
export function colorEnabled(
  stream: NodeJS.WriteStream,
  argv: readonly string[] = process.argv,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (argv.includes('--no-color')) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export class Output {
  readonly c: Colors;
  readonly err: Colors;

  constructor(
    readonly json: boolean,
    private readonly verbose = false,
  ) {
    this.c = pc.createColors(colorEnabled(process.stdout));
    this.err = pc.createColors(colorEnabled(process.stderr));
  }

  /** Human output on stdout; nothing with --json (the JSON document is the whole of stdout then). */
  line(text = ''): void {
    if (!this.json) process.stdout.write(`${text}\n`);
  }

  /** Notes for a person (progress, what to do next) on stderr, so stdout stays parseable. */
  note(text: string): void {
    process.stderr.write(`${text}\n`);
  }

  debug(text: string): void {
    if (this.verbose) process.stderr.write(`${this.err.dim(text)}\n`);
  }

  /** The command's result document with --json: one JSON object, then a newline. */
  result(value: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
  }

  /** `CODE: message` and the hint on stderr; with --json, `{ "error": … }` on stdout as well. Returns the exit code. */
  error(error: unknown, asJson = true): number {
    const report: ErrorReport = describeError(error);
    process.stderr.write(`${this.err.red(this.err.bold(report.code))}: ${report.message}\n`);
    if (report.hint) process.stderr.write(`${this.err.dim('hint:')} ${report.hint}\n`);
    if (this.verbose && error instanceof Error && error.stack) process.stderr.write(`${this.err.dim(error.stack)}\n`);
    if (this.json && asJson) process.stdout.write(`${JSON.stringify({ error: report }, jsonReplacer, 2)}\n`);
    return report.exitCode;
  }
}

/**
 * A cli-table3 table with its own colours off (they would reach pipes: it does not look at the stream); headers
 * are bold through our colours, which are on only on a terminal.
 */
export function table(
  out: Output,
  options: { head?: string[]; colWidths?: number[]; wordWrap?: boolean } = {},
): Table.Table {
  return new Table({
    ...options,
    ...(options.head ? { head: options.head.map((h) => out.c.bold(h)) } : {}),
    style: { head: [], border: [] },
  });
}

/** Dates as ISO strings, bigints as strings: the shapes the README documents. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatNumber(n: number | undefined): string {
  return n === undefined ? '-' : n.toLocaleString('en-US');
}
