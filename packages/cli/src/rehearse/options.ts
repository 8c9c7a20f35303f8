import { CliError } from '../errors.js';
import { integerOption } from '../program.js';

/** `phaseflag rehearse`'s options, checked before anything is started or read. */
export interface RehearseOptions {
  sample?: number;
  rows?: number;
  maxRows?: number;
  readsPerS?: number;
  writesPerS?: number;
  statsWindowMs: number;
  baselineMs: number;
  phaseMinMs: number;
  dropOldColumn: boolean;
  maxLockMs?: number;
  /** --max-backfill, in seconds. */
  maxBackfillS?: number;
  maxP99Ratio?: number;
}

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, min: 60, h: 3600, d: 86_400 };

/** `90s`, `30m`, `1h30m`, `2h`, `500ms`, or a bare number of seconds. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|min|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new CliError(
      'PF_USAGE_BAD_OPTION',
      `${flag} ${text} is not a duration.`,
      `Write it as seconds or with units, e.g. ${flag} 90s, ${flag} 30m, ${flag} 1h30m.`,
      text,
    );
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
}

function positiveNumber(value: unknown, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(n > 0) || n > max) {
    throw new CliError(
      'PF_USAGE_BAD_OPTION',
      `${flag} ${text} is not a number above 0 and at most ${max}.`,
      `Pass e.g. ${flag} 1.5.`,
      text,
    );
  }
  return n;
}

export function rehearseOptions(opts: Record<string, unknown>): RehearseOptions {
  const seconds = (flag: string, key: string, fallback: number, max: number) =>
    (integerOption(opts[key], flag, 0, max, 'seconds') ?? fallback) * 1000;
  const rate = (flag: string, key: string) => {
    if (opts[key] === undefined) return undefined;
    const text = String(opts[key]);
    if (!/^\d+(\.\d+)?$/.test(text.trim()) || Number(text) > 5000)
      throw new CliError(
        'PF_USAGE_BAD_OPTION',
        `${flag} ${text} is not a rate from 0 to 5000 per second.`,
        `Pass e.g. ${flag} 50.`,
        text,
      );
    return Number(text);
  };
  const maxBackfill =
    opts.maxBackfill === undefined ? undefined : parseDuration(String(opts.maxBackfill), '--max-backfill');
  const o: RehearseOptions = {
    statsWindowMs: seconds('--stats-window-s', 'statsWindowS', 5, 300),
    baselineMs: seconds('--baseline-s', 'baselineS', 5, 600),
    phaseMinMs: seconds('--phase-min-s', 'phaseMinS', 2, 600),
    dropOldColumn: opts.dropOldColumn === true,
  };
  const add = <K extends keyof RehearseOptions>(k: K, v: RehearseOptions[K] | undefined) => {
    if (v !== undefined) o[k] = v;
  };
  add('sample', integerOption(opts.sample, '--sample', 1, 10_000_000, 'rows'));
  add('rows', integerOption(opts.rows, '--rows', 1, 100_000_000, 'rows'));
  add('maxRows', integerOption(opts.maxRows, '--max-rows', 1, 100_000_000, 'rows'));
  add('readsPerS', rate('--reads-per-s', 'readsPerS'));
  add('writesPerS', rate('--writes-per-s', 'writesPerS'));
  add('maxLockMs', integerOption(opts.maxLockMs, '--max-lock-ms', 0, 86_400_000, 'milliseconds'));
  add('maxBackfillS', maxBackfill);
  add('maxP99Ratio', positiveNumber(opts.maxP99Ratio, '--max-p99-ratio', 1_000_000));
  return o;
}
