import { CatalogError, quoteIdent } from '@phaseflag/core';

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
  // knex reads `\?` as an escaped placeholder and drops the backslash, anywhere in the text (write chr(92) instead).
  if (sql.includes('\\?'))
    return 'it has a backslash right before "?", which the router\'s query builder (knex) would drop (write the backslash as chr(92))';
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
        if (escapes && d === '\\') {
          i += 2;
          continue;
        }
        if (d === "'") {
          if (sql[i + 1] === "'") {
            i += 2;
            continue;
          }
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
          if (sql[i + 1] === '"') {
            i += 2;
            continue;
          }
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
        if (sql[i] === '/' && sql[i + 1] === '*') {
          nesting++;
          i += 2;
          continue;
        }
        if (sql[i] === '*' && sql[i + 1] === '/') {
          nesting--;
          i += 2;
          continue;
        }
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

/**
 * The one way a user's expression becomes a value in our SQL: embedded on lines of its own and cast to the column's
 * type, as one parenthesised expression. The backfill's UPDATE, verify, the sync trigger, the router's derived
 * writes and the plan-time probes all go through it, so an expression that passes the plan is evaluated the same
 * way everywhere (the explicit cast is the one verify compares under, so e.g. numeric(12,2) does not differ forever
 * because the expression has more decimals). Refuses text that is not one expression (expressionShapeProblem), the
 * same check the plan applies.
 */
export function expressionValue(expression: string, type: string): string {
  const problem = shapeProblemOf(expression);
  if (problem !== null) {
    throw new CatalogError('PF_INVALID_EXPRESSION', `The expression is not one SQL expression: ${problem}.`, {
      value: expression,
      hint: 'Give a single expression over the row\'s columns, e.g. "round(amount * 100)::bigint"; statements and unbalanced parentheses are refused.',
    });
  }
  return `(${embed(expression)}::${type})`;
}

const shapeChecked = new Map<string, string | null>();

/** expressionShapeProblem, remembered per text: the router renders the same few expressions on every write. */
function shapeProblemOf(expression: string): string | null {
  let problem = shapeChecked.get(expression);
  if (problem === undefined) {
    problem = expressionShapeProblem(expression);
    if (shapeChecked.size < 1000) shapeChecked.set(expression, problem);
  }
  return problem;
}

/**
 * SQL text that holds a user's SQL, made safe for knex: knex turns every `?` of a statement into a bind parameter
 * (`$n`), even in a raw statement without bindings, so the jsonb operators `?`, `?|` and `?&` would become
 * parameters. `\?` is knex's escape for a literal `?`. Apply it to the user's part of a statement that has bindings
 * of its own, or to the whole text of one that has none. Statements sent on a node-postgres client directly (the
 * backfill's and verify's Session, DDL) are not rescanned and must not be escaped.
 */
export function forKnex(sql: string): string {
  return sql.replace(/\?/g, '\\?');
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

/**
 * `"name"`, always in the plain form, `?` included: what PL/pgSQL reads as a variable or a field of NEW (it does not
 * read `U&"…"`). Only for text that never passes through knex (the sync function is created by DDL on a client).
 */
export function plpgsqlIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * `"schema"."name"` as a bind value for `::regclass` or `to_regclass()`, whose input parses only the plain `"…"`
 * form (`quoteIdent` writes `U&"…"` for a name with `?`). A bind value is never rescanned by knex.
 */
export function regclassText(schema: string, name: string): string {
  return `${plpgsqlIdent(schema)}.${plpgsqlIdent(name)}`;
}

/**
 * A string as an SQL literal for text a migration tool sends (generated SQL files): `'…'` with quotes doubled, or
 * `E'…'` with backslashes doubled when it holds one, so it reads the same whatever standard_conforming_strings is.
 * For files, and for a backfill batch's statements sent several to a round trip (backfill/statements.ts); every
 * other statement phaseflag sends takes bind parameters.
 */
export function sqlLiteral(value: string): string {
  const quoted = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}
