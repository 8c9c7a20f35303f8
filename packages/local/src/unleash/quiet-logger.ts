/** The last warnings and errors Unleash logged, for the message of a failed start. */
export type RecentLog = string[];

const LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
type Level = (typeof LEVELS)[number];

/**
 * unleash-server's `getLogger` option. Silent by default (a test run should print test results, not Unleash's
 * housekeeping); `PHASEFLAG_UNLEASH_LOG=debug|info|warn|error` prints that level and above to stderr. Warnings
 * and errors are always kept (the last 50) so a failed start can say why.
 */
export function quietLogger(recent: RecentLog): (category: string) => Record<Level, (...args: unknown[]) => void> {
  const wanted = process.env.PHASEFLAG_UNLEASH_LOG?.toLowerCase() as Level | undefined;
  const threshold = wanted && LEVELS.includes(wanted) ? LEVELS.indexOf(wanted) : LEVELS.length;
  return (category) => {
    const logAt =
      (level: Level) =>
      (...args: unknown[]) => {
        const index = LEVELS.indexOf(level);
        if (index >= LEVELS.indexOf('warn')) {
          recent.push(`${level} ${category}: ${args.map(describe).join(' ')}`);
          if (recent.length > 50) recent.shift();
        }
        if (index >= threshold)
          process.stderr.write(`[unleash ${level}] ${category}: ${args.map(describe).join(' ')}\n`);
      };
    return {
      debug: logAt('debug'),
      info: logAt('info'),
      warn: logAt('warn'),
      error: logAt('error'),
      fatal: logAt('fatal'),
    };
  };
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.stack ?? value.message;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
