import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import { LintError } from './errors.js';

export const SQL_EXTENSIONS = ['.sql'] as const;
export const KNEX_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'] as const;

const lintable = (path: string) =>
  !path.endsWith('.d.ts') && [...SQL_EXTENSIONS, ...KNEX_EXTENSIONS].includes(extname(path) as '.sql');

/**
 * The files to lint, in order: each path as given, a directory as every .sql and migration file under it (sorted by
 * path, as knex and most runners order migrations; node_modules and dot-folders skipped). A path that does not exist
 * is `PF_LINT_FILE_NOT_FOUND`; a file of another kind named explicitly is `PF_LINT_UNSUPPORTED_FILE`.
 */
export function expandPaths(paths: readonly string[], cwd = process.cwd()): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const abs = resolve(cwd, p);
    let isDir: boolean;
    try {
      isDir = statSync(abs).isDirectory();
    } catch {
      throw new LintError('PF_LINT_FILE_NOT_FOUND', `${p}: no such file or directory.`, {
        value: p,
        file: p,
        hint: 'Give the path of a .sql file, a knex migration file or a directory of them.',
      });
    }
    if (isDir) out.push(...walkDir(abs).sort());
    else if (lintable(abs)) out.push(abs);
    else
      throw new LintError(
        'PF_LINT_UNSUPPORTED_FILE',
        `${p}: lint reads .sql files and knex migration files (.js, .mjs, .cjs, .ts).`,
        {
          value: p,
          file: p,
          hint: 'Give a .sql file, a knex migration or a directory; other files are not SQL migrations.',
        },
      );
  }
  return out;
}

function walkDir(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith('.') || e.name === 'node_modules') return [];
    const path = join(dir, e.name);
    if (e.isDirectory()) return walkDir(path);
    return e.isFile() && lintable(path) ? [path] : [];
  });
}

export function readSql(path: string): string {
  return readFileSync(path, 'utf8');
}

/** How a file is named in findings: relative to the working directory when under it. */
export function displayName(path: string, cwd = process.cwd()): string {
  const rel = relative(cwd, path);
  return rel.startsWith('..') ? path : rel;
}

export function isSqlFile(path: string): boolean {
  return extname(path) === '.sql';
}
