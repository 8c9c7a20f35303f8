import assert from 'node:assert/strict';
import { isPhaseflagError, quoteIdent } from '@phaseflag/core';
import { createSuiteSchema } from '@phaseflag/testkit';
import knexFactory from 'knex';
import { createContext } from '../src/context.js';
import { expressionShapeProblem, plpgsqlIdent, regclassText } from '../src/sql/text.js';

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

describe('sql-text: names where quoteIdent\'s U&"…" form is not read', () => {
  it('regclass values and PL/pgSQL get plain "…" quoting, "?" included, and Postgres reads them back', async () => {
    assert.equal(plpgsqlIdent('a?b"c'), '"a?b""c"');
    assert.equal(regclassText('Sales Data', 'we"ird?'), '"Sales Data"."we""ird?"');
    const suite = await createSuiteSchema('sql text names');
    try {
      await suite.knex.raw(`CREATE TABLE ${quoteIdent('we"ird?.t')} (x int)`);
      const found = await suite.knex.raw('SELECT to_regclass(?)::oid IS NOT NULL AS found', [
        regclassText(suite.schema, 'we"ird?.t'),
      ]);
      assert.equal(found.rows[0].found, true);
    } finally {
      await suite.cleanup();
    }
  });

  it('keeps the state schema a plain name: knex binds it as an identifier (??) throughout the state store', async () => {
    const knex = knexFactory({ client: 'pg' }); // never connects: createContext only keeps it
    try {
      for (const stateSchema of ['a.b', 'x as y', 'a?b', 'Sales Data']) {
        assert.throws(
          () => createContext({ knex, stateSchema }),
          (e: unknown) => isPhaseflagError(e, 'PF_INVALID_IDENTIFIER') && e.value === stateSchema,
          stateSchema,
        );
      }
      assert.equal(createContext({ knex, stateSchema: 'Phase_flag$2' }).stateSchema, 'Phase_flag$2');
      assert.throws(
        () => createContext({ knex: {} as never }),
        (e: unknown) => isPhaseflagError(e, 'PF_INVALID_OPTIONS'),
      );
    } finally {
      await knex.destroy();
    }
  });
});
