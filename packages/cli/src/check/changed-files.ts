import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { CliError } from '../errors.js';

const run = promisify(execFile);

/**
 * The files under `paths` that a pull request adds or changes: `git diff --name-only <ref>...HEAD` (what the branch
 * changed since it left `ref`, as a pull request shows it), plus files not committed yet, minus deleted ones.
 */
export async function changedFiles(ref: string, paths: readonly string[], cwd = process.cwd()): Promise<string[]> {
  const scope = paths.length > 0 ? ['--', ...paths] : [];
  const git = async (args: string[]) => {
    try {
      return (await run('git', args, { cwd, maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
      throw new CliError(
        'PF_USAGE_BAD_OPTION',
        `--since ${ref}: git could not list the changed files: ${stderr}`,
        'Run inside the repository, and fetch the base branch first (CI checkouts are often shallow: fetch-depth: 0).',
        ref,
      );
    }
  };
  const committed = await git(['diff', '--name-only', '--diff-filter=ACMR', `${ref}...HEAD`, ...scope]);
  const uncommitted = await git(['ls-files', '--modified', '--others', '--exclude-standard', ...scope]);
  const root = (await git(['rev-parse', '--show-toplevel'])).trim();
  const files = new Set(
    [...committed.split('\n'), ...uncommitted.split('\n').map((f) => f && resolve(cwd, f))]
      .filter(Boolean)
      .map((f) => resolve(root, f)),
  );
  return [...files].filter((f) => existsSync(f)).sort();
}
