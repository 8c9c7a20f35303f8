import type { Comment } from './parse.js';
import { lineColumn } from './parse.js';
import { checkRuleNames } from './rules.js';

export interface Directive {
  scope: 'statement' | 'file';
  /** Empty: every rule. */
  rules: string[];
}

const FILE = 'phaseflag-lint-ignore-file';
const NEXT = 'phaseflag-lint-ignore';

/**
 * `-- phaseflag-lint-ignore rule-a, rule-b` (the next statement) and `-- phaseflag-lint-ignore-file rule` (the whole
 * file); with no names, every rule. A name lint does not know is `PF_LINT_UNKNOWN_RULE` at the comment.
 */
export function directives(
  comments: readonly Comment[],
  sql: string,
  file: string,
  origin?: { line: number; column: number },
): Directive[] {
  const out: Directive[] = [];
  for (const c of comments) {
    const text = c.text.trim();
    const scope = text.startsWith(FILE) ? 'file' : text.startsWith(NEXT) ? 'statement' : undefined;
    if (!scope) continue;
    const rest = text.slice(scope === 'file' ? FILE.length : NEXT.length);
    if (rest.length > 0 && rest[0] !== ' ' && rest[0] !== '\t' && rest[0] !== ':') continue;
    const rules = rest
      .replace(':', ' ')
      .split(/[\s,]+/)
      .filter((r) => r.length > 0);
    const pos = origin ?? lineColumn(sql, c.offset);
    checkRuleNames(rules, `The comment "${text}" at ${file}:${pos.line}`, { file, line: pos.line, column: pos.column });
    out.push({ scope, rules });
  }
  return out;
}
