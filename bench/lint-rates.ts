/**
 * `node --import tsx bench/lint-rates.ts [--rows N]`: how fast this machine's Postgres rewrites, scans and indexes a
 * table, in MB of table per second — the figures `@phaseflag/lint` turns a table's size into an expected lock hold
 * with (RATES_MB_PER_S in packages/lint/src/catalog.ts). Works in a schema of its own in PHASEFLAG_DATABASE_URL
 * (default postgres://postgres@127.0.0.1:5432/test) and drops it afterwards. Prints one JSON line.
 */
import knexFactory from 'knex';

const rowsArg = process.argv.indexOf('--rows');
const rows = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 2_000_000;
const url = process.env.PHASEFLAG_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 1 } });
const schema = `lint_rates_${process.pid}`;

async function timed(sql: string): Promise<number> {
  const start = performance.now();
  await knex.raw(sql);
  return (performance.now() - start) / 1000;
}

async function bytes(): Promise<number> {
  const r = await knex.raw(`SELECT pg_total_relation_size('${schema}.t') AS b`);
  return Number((r.rows[0] as { b: string }).b);
}

try {
  await knex.raw(`CREATE SCHEMA ${schema}`);
  await knex.raw(
    `CREATE TABLE ${schema}.t AS SELECT g AS id, (g % 1000)::int AS n, md5(g::text) AS s, now() AS at
       FROM generate_series(1, ${rows}) g`,
  );
  await knex.raw(`ALTER TABLE ${schema}.t ADD PRIMARY KEY (id)`);
  await knex.raw(`VACUUM ANALYZE ${schema}.t`);
  const size = await bytes();
  const mb = size / (1024 * 1024);
  const index = await timed(`CREATE INDEX ON ${schema}.t (s)`);
  const scan = await timed(`ALTER TABLE ${schema}.t ADD CONSTRAINT n_positive CHECK (n >= 0)`);
  const withIndexes = (await bytes()) / (1024 * 1024);
  const rewrite = await timed(`ALTER TABLE ${schema}.t ALTER COLUMN n TYPE bigint`);
  const version = (await knex.raw(`SHOW server_version`)).rows[0] as { server_version: string };
  console.log(
    JSON.stringify({
      rows,
      tableMB: Math.round(mb),
      postgres: version.server_version,
      indexMBps: Math.round(mb / index),
      scanMBps: Math.round(mb / scan),
      rewriteMBps: Math.round(withIndexes / rewrite),
      seconds: { index, scan, rewrite },
    }),
  );
} finally {
  await knex.raw(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await knex.destroy();
}
