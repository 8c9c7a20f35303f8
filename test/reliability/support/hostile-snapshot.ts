import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Knex } from 'knex';

const run = promisify(execFile);

/**
 * Everything a hostile input could have changed in the suite's schemas, as one string: the schema-only dump
 * (`pg_dump`, or a catalog listing where pg_dump is missing) and an md5 of every table's ordered rows.
 */
export async function databaseSnapshot(knex: Knex, databaseUrl: string, schemas: readonly string[]): Promise<string> {
  return `${await schemaDump(knex, databaseUrl, schemas)}\n-- rows\n${await rowChecksums(knex, schemas)}`;
}

let pgDump: boolean | undefined;

async function schemaDump(knex: Knex, databaseUrl: string, schemas: readonly string[]): Promise<string> {
  pgDump ??= await run('pg_dump', ['--version']).then(
    () => true,
    () => false,
  );
  if (pgDump) {
    const args = ['--schema-only', '--no-owner', '--no-privileges', ...schemas.flatMap((s) => ['-n', s]), databaseUrl];
    const { stdout } = await run('pg_dump', args, { maxBuffer: 64 * 1024 * 1024 });
    // The header names the versions, and \restrict carries a random key per dump: neither is about the schemas.
    return stdout
      .split('\n')
      .filter((l) => !l.startsWith('-- Dumped ') && !/^\\(un)?restrict /.test(l))
      .join('\n');
  }
  return catalogListing(knex, schemas);
}

/** Relations, columns, constraints, indexes, triggers and functions of `schemas`, when there is no pg_dump. */
async function catalogListing(knex: Knex, schemas: readonly string[]): Promise<string> {
  const q = async (sql: string) => JSON.stringify((await knex.raw(sql, [schemas])).rows);
  return [
    await q(`SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY(?) ORDER BY 1, 2`),
    await q(`SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
      pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = ANY(?) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2`),
    await q(`SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
      JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = ANY(?) ORDER BY 1, 2`),
    await q(`SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c
      ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(?) ORDER BY 1`),
    await q(`SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c
      ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(?) ORDER BY 1, 2`),
    await q(`SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = ANY(?) ORDER BY 1`),
  ].join('\n');
}

/** `schema.table count md5` for every table of `schemas`, the rows ordered by their text form. */
async function rowChecksums(knex: Knex, schemas: readonly string[]): Promise<string> {
  const tables = (
    await knex.raw<{ rows: { s: string; t: string }[] }>(
      `SELECT n.nspname AS s, c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = ANY(?) AND c.relkind IN ('r', 'p') ORDER BY 1, 2`,
      [schemas],
    )
  ).rows;
  const lines: string[] = [];
  for (const { s, t } of tables) {
    const r = await knex.raw<{ rows: { n: number; md5: string | null }[] }>(
      `SELECT count(*)::int AS n, md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS md5 FROM ??.?? AS x`,
      [s, t],
    );
    lines.push(`${s}.${t} ${r.rows[0]!.n} ${r.rows[0]!.md5 ?? '-'}`);
  }
  return lines.join('\n');
}
