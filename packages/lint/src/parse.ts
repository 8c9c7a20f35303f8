import type { Node, ParseResult } from '@pgsql/types';
import { loadModule, parseSync } from 'libpg-query';
import { LintError } from './errors.js';

/** A comment between statements (where ignore directives live), at its offset in the text. */
export interface Comment {
  text: string;
  offset: number;
}

/** One statement as Postgres's parser split it, with offsets as string indices (the parser counts bytes). */
export interface ParsedStatement {
  node: Node;
  /** Index of the statement's first token. */
  start: number;
  /** Index just past its last character (before the `;`). */
  end: number;
  text: string;
  /** Comments between the previous statement and this one. */
  leading: Comment[];
  /** Maps a node's `location` (a byte offset in the whole text) to a string index. */
  at(location: number | undefined): number;
}

export interface ParsedSql {
  statements: ParsedStatement[];
  /** Comments after the last statement. */
  trailing: Comment[];
}

let loaded: Promise<void> | undefined;

/** The WebAssembly parser loads once per process. */
export async function ensureParser(): Promise<void> {
  loaded ??= loadModule();
  await loaded;
}

/** byte offset → string index, for texts with characters outside ASCII. */
function byteMapper(sql: string): (byte: number) => number {
  const bytes = Buffer.byteLength(sql, 'utf8');
  if (bytes === sql.length) return (b) => b;
  const map = new Uint32Array(bytes + 1);
  let b = 0;
  for (let i = 0; i < sql.length; i++) {
    const code = sql.codePointAt(i)!;
    const width = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    for (let k = 0; k < width; k++) map[b + k] = i;
    b += width;
    if (code >= 0x10000) i++;
  }
  map[bytes] = sql.length;
  return (byte) => map[Math.min(Math.max(byte, 0), bytes)]!;
}

/**
 * Skips what lies between two statements — whitespace, `;`, `--` and (nested) `/* *\/` comments, which is all the
 * parser leaves there — and collects the comments. Returns the index of the next token.
 */
export function skipTrivia(sql: string, from: number, to: number, comments: Comment[]): number {
  let i = from;
  while (i < to) {
    const c = sql[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === ';') {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      let j = i + 2;
      while (j < to && sql[j] !== '\n') j++;
      comments.push({ text: sql.slice(i + 2, j), offset: i });
      i = j;
    } else if (c === '/' && sql[i + 1] === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < to && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else {
          j++;
        }
      }
      comments.push({ text: sql.slice(i + 2, depth === 0 ? j - 2 : j), offset: i });
      i = j;
    } else {
      break;
    }
  }
  return i;
}

/** Line and column (1-based) of a string index. */
export function lineColumn(sql: string, index: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < index && i < sql.length; i++) {
    if (sql[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: index - lineStart + 1 };
}

/** Parses with Postgres 17's grammar; a syntax error is `PF_LINT_SYNTAX` at its file, line and column. */
export async function parseSql(
  sql: string,
  file: string,
  origin?: { line: number; column: number },
): Promise<ParsedSql> {
  await ensureParser();
  let result: ParseResult;
  try {
    result = parseSync(sql) as ParseResult;
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const index = Math.max(0, details?.cursorPosition ?? 0);
    const pos = origin ?? lineColumn(sql, index);
    const message = (error as Error).message;
    throw new LintError('PF_LINT_SYNTAX', `${file}:${pos.line}:${pos.column}: ${message}.`, {
      value: sql.slice(index, index + 60),
      hint: 'phaseflag lint reads SQL with the PostgreSQL 17 parser: fix the statement (or lint the file it came from).',
      file,
      line: pos.line,
      column: pos.column,
      cause: error,
    });
  }
  const at = byteMapper(sql);
  const statements: ParsedStatement[] = [];
  for (const raw of result.stmts ?? []) {
    const from = at(raw.stmt_location ?? 0);
    const to = raw.stmt_len ? at((raw.stmt_location ?? 0) + raw.stmt_len) : sql.length;
    const leading: Comment[] = [];
    const start = skipTrivia(sql, from, to, leading);
    statements.push({
      node: raw.stmt!,
      start,
      end: to,
      text: sql.slice(start, to).trimEnd(),
      leading,
      at: (l) => (l === undefined || l < 0 ? start : at(l)),
    });
  }
  const trailing: Comment[] = [];
  skipTrivia(sql, statements.at(-1)?.end ?? 0, sql.length, trailing);
  return { statements, trailing };
}
