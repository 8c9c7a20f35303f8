import { quoteIdent } from '@phaseflag/core';

/**
 * A user's expression is SQL by design, so it has to be pasted into the statements that evaluate it. What must
 * never happen is that it escapes the parentheses we put around it: a top-level `;` would start a second
 * statement (knex sends parameterless SQL with the simple protocol, which runs every statement it is given), and
 * an unbalanced `)` would let text after it become part of our statement. This scanner splits the text the way
 * the server's lexer does (string constants, quoted identifiers, dollar quotes, comments) and reports the first
 * such problem; whatever it accepts is one balanced parenthesised chunk of SQL, which Postgres then parses.
 */
export function expressionShapeProblem(sql: string): string | null {
  if (sql.trim() === '') return 'it is empty';
  let depth = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === "'") {
      const escapes = isEscapeStringPrefix(sql, i);
      i++;
      for (;;) {
        if (i >= n) return 'it has an unterminated string constant';
        const d = sql[i]!;
        if (escapes && d === '\\') { i += 2; continue; }
        if (d === "'") {
          if (sql[i + 1] === "'") { i += 2; continue; }
          i++;
          break;
        }
        i++;
      }
      continue;
    }
    if (c === '"') {
      i++;
      for (;;) {
        if (i >= n) return 'it has an unterminated quoted identifier';
        if (sql[i] === '"') {
          if (sql[i + 1] === '"') { i += 2; continue; }
          i++;
          break;
        }
        i++;
      }
      continue;
    }
    if (c === '$' && !isIdentChar(sql[i - 1])) {
      const m = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (m) {
        const end = sql.indexOf(m[0], i + m[0].length);
        if (end < 0) return `it has an unterminated dollar-quoted string (${m[0]})`;
        i = end + m[0].length;
        continue;
      }
    }
    if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      let nesting = 1;
      i += 2;
      while (nesting > 0) {
        if (i >= n) return 'it has an unterminated /* comment';
        if (sql[i] === '/' && sql[i + 1] === '*') { nesting++; i += 2; continue; }
        if (sql[i] === '*' && sql[i + 1] === '/') { nesting--; i += 2; continue; }
        i++;
      }
      continue;
    }
    if (c === ';') return 'it contains ";" (one expression, not statements)';
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) return 'it closes a parenthesis it did not open';
    i++;
  }
  return depth === 0 ? null : 'it leaves a parenthesis open';
}

function isIdentChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}

/** `E'…'` (or `e'…'`) starts a string in which backslash escapes the next character. */
function isEscapeStringPrefix(sql: string, quoteAt: number): boolean {
  const p = sql[quoteAt - 1];
  return (p === 'E' || p === 'e') && !isIdentChar(sql[quoteAt - 2]);
}

/**
 * The expression as it is embedded: on lines of its own, so that a trailing `-- comment` in the user's text ends
 * at the newline instead of swallowing the closing parenthesis and whatever we wrote after it.
 */
export function embed(expression: string): string {
  return `(\n${expression}\n)`;
}

/** A dollar-quote tag that occurs nowhere in `body`, chosen deterministically so a plan reads the same twice. */
export function dollarTag(body: string, base = 'pf'): string {
  for (let n = 0; ; n++) {
    const tag = `$${base}${n === 0 ? '' : `_${n}`}$`;
    if (!body.includes(tag)) return tag;
  }
}

/** `"schema"."name"`: the only way a relation name reaches SQL text. */
export function qualify(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}
