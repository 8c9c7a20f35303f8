import type { Knex } from 'knex';
import type { ProbeSite } from './probe-site.js';

export interface DependencyFacts {
  inputs: string[] | null;
  subquery: boolean;
  wholeRow: boolean;
  systemColumn: boolean;
  external: string[] | null;
  /** current_user, current_timestamp, …: SQL value functions, which are not calls in the tree. */
  sqlValueFunction: boolean;
  /** The tree produces or reads a value of an enum type (whose text input and output Postgres marks STABLE). */
  enumType: boolean;
  functions: { name: string; volatility: 'i' | 's' | 'v'; kind: string; returnsSet: boolean }[] | null;
}

/**
 * Facts about one stored expression: a view's rewrite rule or a constraint. pg_depend gives the copy's columns it
 * reads (the copy is an ordinary object, so its columns are recorded). Functions cannot come from pg_depend:
 * dependencies on built-in ("pinned") objects are never recorded, so random() or now() would be invisible. They
 * are read from the stored node tree instead, where every call names its function (`:funcid`, `:opfuncid`,
 * `:aggfnoid`, `:winfnoid`) or its operator (`:opno`); the tree also shows sublinks and whole-row references.
 */
export async function dependencyFacts(
  site: ProbeSite,
  catalog: 'pg_rewrite' | 'pg_constraint',
  objid: Knex.Raw,
  copy: string,
): Promise<DependencyFacts> {
  const { trx } = site;
  const tree =
    catalog === 'pg_rewrite'
      ? 'SELECT ev_action::text FROM pg_rewrite WHERE oid = (SELECT objid FROM obj)'
      : 'SELECT conbin::text FROM pg_constraint WHERE oid = (SELECT objid FROM obj)';
  // With only pg_catalog on the path, pg_describe_object qualifies every other object ("function app.f(numeric)").
  await trx.raw("SELECT set_config('search_path', 'pg_catalog', true)");
  const facts = (
    await trx.raw(
      `WITH obj AS (SELECT ?::regclass AS classid, ?::oid AS objid),
          tree AS (${tree}),
          ids AS (SELECT m[1] AS kind, m[2]::oid AS oid FROM tree t(text), regexp_matches(t.text, ':(funcid|opfuncid|aggfnoid|winfnoid|opno) ([0-9]+)', 'g') AS m),
          fns AS (SELECT oid FROM ids WHERE kind <> 'opno' UNION SELECT o.oprcode FROM ids JOIN pg_operator o ON o.oid = ids.oid WHERE ids.kind = 'opno')
     SELECT
       (SELECT array_agg(DISTINCT a.attname::text) FROM pg_depend d, obj JOIN pg_attribute a ON true
         WHERE d.classid = obj.classid AND d.objid = obj.objid AND a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
           AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ?::regclass AND d.refobjsubid > 0) AS inputs,
       coalesce((SELECT strpos(t.text, '{SUBLINK') > 0 FROM tree t(text)), false) AS subquery,
       coalesce((SELECT strpos(t.text, ':varattno 0 ') > 0 FROM tree t(text)), false) AS "wholeRow",
       coalesce((SELECT t.text ~ ':varattno -[0-9]' FROM tree t(text)), false) AS "systemColumn",
       coalesce((SELECT strpos(t.text, '{SQLVALUEFUNCTION') > 0 FROM tree t(text)), false) AS "sqlValueFunction",
       EXISTS (SELECT 1 FROM tree t(text), regexp_matches(t.text, ':(resulttype|consttype|vartype|funcresulttype|opresulttype|casetype|minmaxtype) ([0-9]+)', 'g') AS m
                JOIN pg_type ty ON ty.oid = m[2]::oid
               WHERE ty.typtype = 'e' OR (ty.typtype = 'd' AND (SELECT b.typtype FROM pg_type b WHERE b.oid = ty.typbasetype) = 'e')) AS "enumType",
       (SELECT array_agg(DISTINCT pg_describe_object(d.refclassid, d.refobjid, 0)) FROM pg_depend d, obj
         WHERE d.classid = obj.classid AND d.objid = obj.objid AND d.deptype = 'n'
           AND NOT (d.refclassid = 'pg_class'::regclass AND (d.refobjid = ?::regclass
                    OR d.refobjid = (SELECT ev_class FROM pg_rewrite WHERE obj.classid = 'pg_rewrite'::regclass AND oid = obj.objid)))) AS external,
       (SELECT json_agg(json_build_object('name', p.oid::regprocedure::text, 'volatility', p.provolatile, 'kind', p.prokind, 'returnsSet', p.proretset))
          FROM fns JOIN pg_proc p ON p.oid = fns.oid) AS functions`,
      [catalog, objid, copy, copy],
    )
  ).rows[0] as DependencyFacts;
  await trx.raw("SELECT set_config('search_path', ?, true)", [site.searchPath]);
  return facts;
}
