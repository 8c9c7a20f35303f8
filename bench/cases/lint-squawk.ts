/**
 * squawk, the linter case 10 measures phaseflag lint against: the real binary that `squawk-cli` (a devDependency of
 * the bench only) installs through its platform package, run with its JSON reporter on files, its findings mapped
 * back to each file by name and line.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface SquawkFinding {
  rule: string;
  level: string;
  /** 1-based, in the SQL squawk was given. */
  line: number;
  column: number;
  message: string;
}

export interface SquawkRunOptions {
  pgVersion: number;
  assumeInTransaction: boolean;
  exclude: readonly string[];
}

/** One file for squawk: a path on disk, or SQL (a knex migration's captured statements) written to a scratch file. */
export type SquawkInput = { key: string; path: string } | { key: string; sql: string };

const require = createRequire(import.meta.url);

/** The platform binary itself (`@squawk-cli/<os>-<arch>/bin/squawk`), not the Node wrapper that spawns it. */
export function squawkBinary(): string {
  const pkg = `@squawk-cli/${process.platform}-${process.arch}`;
  try {
    return join(
      dirname(require.resolve(`${pkg}/package.json`)),
      'bin',
      process.platform === 'win32' ? 'squawk.exe' : 'squawk',
    );
  } catch {
    throw new Error(
      `squawk's binary for this platform (${pkg}) is not installed: run npm ci at the root (squawk-cli is a devDependency of bench/)`,
    );
  }
}

export async function squawkVersion(): Promise<string> {
  const { stdout } = await run(squawkBinary(), ['--version'], tmpdir());
  return stdout.trim().replace(/^squawk\s+/, '');
}

/** Runs squawk once over every input with the same options; findings keyed by input. */
export async function runSquawk(
  inputs: readonly SquawkInput[],
  options: SquawkRunOptions,
): Promise<Map<string, SquawkFinding[]>> {
  const out = new Map<string, SquawkFinding[]>(inputs.map((i) => [i.key, []]));
  if (!inputs.length) return out;
  // A scratch working directory: no .squawk.toml of ours or the user's is picked up, and captured SQL lands here.
  const cwd = mkdtempSync(join(tmpdir(), 'phaseflag-squawk-'));
  try {
    const byPath = new Map<string, string>();
    inputs.forEach((input, i) => {
      const path = 'path' in input ? input.path : join(cwd, `captured-${i}.sql`);
      if ('sql' in input) writeFileSync(path, input.sql);
      byPath.set(path, input.key);
    });
    const args = [
      '--reporter',
      'json',
      `--pg-version=${options.pgVersion}`,
      options.assumeInTransaction ? '--assume-in-transaction' : '--no-assume-in-transaction',
      ...(options.exclude.length ? [`--exclude=${options.exclude.join(',')}`] : []),
      ...byPath.keys(),
    ];
    const { stdout, code, stderr } = await run(squawkBinary(), args, cwd);
    // Exit 1 means "findings"; anything else, or output that is not its JSON array, is squawk failing.
    if (code !== 0 && code !== 1) throw new Error(`squawk exited ${code}: ${stderr.trim() || stdout.trim()}`);
    const raw = JSON.parse(stdout || '[]') as {
      file: string;
      line: number;
      column: number;
      level: string;
      message: string;
      rule_name: string;
    }[];
    for (const f of raw) {
      const key = byPath.get(f.file) ?? byPath.get(join(cwd, f.file));
      if (key === undefined) throw new Error(`squawk reported a file it was not given: ${f.file}`);
      out
        .get(key)!
        .push({ rule: f.rule_name, level: f.level, line: f.line + 1, column: f.column + 1, message: f.message });
    }
    return out;
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

function run(file: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number')
        return reject(new Error(`${file}: ${error.message}`, { cause: error }));
      resolve({ stdout, stderr, code: error ? (error.code as number) : 0 });
    });
  });
}
