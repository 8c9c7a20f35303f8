import assert from 'node:assert/strict';
import { expressionShapeProblem } from '../src/sql/text.js';

describe('sql-text: expressionShapeProblem', () => {
  it('finds statements and unbalanced parentheses only outside literals, identifiers and comments', () => {
    for (const ok of [
      "a || ';'",
      'a || ")"',
      "E'\\';' || b",
      '$$;$$ || $t$)$t$',
      'a -- ;)\n',
      '/* ; /* nested ) */ */ a',
      'f(x, (y))',
      'a$b + 1',
    ]) {
      assert.equal(expressionShapeProblem(ok), null, ok);
    }
    for (const bad of ['a; b', 'a)', '(a', "'open", '"open', '$$open', '/* open', '', "a ~ 'x\\?'"]) {
      assert.notEqual(expressionShapeProblem(bad), null, bad);
    }
  });
});
