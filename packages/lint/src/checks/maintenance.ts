import type { ClusterStmt, IndexStmt, Node, ReindexStmt, VacuumStmt } from '@pgsql/types';
import { stringsOf, tableOf, tableText } from '../ast.js';
import type { ParsedStatement } from '../parse.js';
import { BLOCKS_ALL, BLOCKS_WRITES, type CheckContext, type RawFinding } from './context.js';

/** CREATE INDEX: CONCURRENTLY, and not inside a transaction block when it is. */
export function checkCreateIndex(s: ParsedStatement, n: IndexStmt, ctx: CheckContext): RawFinding[] {
  const table = tableOf(n.relation);
  if (n.idxname) ctx.state.createIndex(n.idxname);
  if (n.concurrent) return concurrentInTransaction(s, ctx, 'CREATE INDEX CONCURRENTLY');
  if (!table) return [];
  const what = n.unique ? 'CREATE UNIQUE INDEX' : 'CREATE INDEX';
  return [
    {
      rule: 'require-concurrent-index-creation',
      index: s.start,
      table,
      hazard: 'index',
      message: `${what} without CONCURRENTLY takes a SHARE lock on ${tableText(table)} for the whole build: ${BLOCKS_WRITES}.`,
      safe: `Build it with ${what} CONCURRENTLY (outside a transaction block; a failed build leaves an INVALID index to drop and rebuild).`,
    },
  ];
}

export function concurrentInTransaction(s: ParsedStatement, ctx: CheckContext, what: string): RawFinding[] {
  if (!ctx.state.inTransaction) return [];
  return [
    {
      rule: 'ban-concurrent-index-creation-in-transaction',
      index: s.start,
      message: `${what} cannot run inside a transaction block: Postgres refuses it ("cannot run inside a transaction block") and the migration fails.`,
      safe: 'Run it outside a transaction: its own migration file, with `config = { transaction: false }` in a knex migration, or after COMMIT.',
    },
  ];
}

export function checkDropIndex(
  s: ParsedStatement,
  concurrent: boolean,
  objects: Node[],
  ctx: CheckContext,
): RawFinding[] {
  if (concurrent) return concurrentInTransaction(s, ctx, 'DROP INDEX CONCURRENTLY');
  const names = objects.map((o) => ('List' in o ? stringsOf(o.List.items) : []).at(-1) ?? '');
  if (names.every((name) => ctx.state.indexCreated(name))) return [];
  return [
    {
      rule: 'require-concurrent-index-deletion',
      index: s.start,
      message: `DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the index's table: ${BLOCKS_ALL}, and it queues behind any running transaction that touched the table.`,
      safe: 'Drop it with DROP INDEX CONCURRENTLY (outside a transaction block).',
    },
  ];
}

export function checkReindex(s: ParsedStatement, n: ReindexStmt, ctx: CheckContext): RawFinding[] {
  const options = (n.params ?? []).flatMap((p) => ('DefElem' in p ? [p.DefElem] : []));
  const concurrent = options.find((d) => d.defname === 'concurrently');
  const on = concurrent && !(concurrent.arg && 'Boolean' in concurrent.arg && concurrent.arg.Boolean.boolval !== true);
  if (on) return concurrentInTransaction(s, ctx, 'REINDEX CONCURRENTLY');
  if (n.kind === 'REINDEX_OBJECT_SYSTEM') return [];
  const table = n.kind === 'REINDEX_OBJECT_TABLE' ? tableOf(n.relation) : undefined;
  return [
    {
      rule: 'require-concurrent-reindex',
      index: s.start,
      ...(table ? { table, hazard: 'index' as const } : {}),
      message: `REINDEX without CONCURRENTLY locks out writes to the table (and reads that would use the index) until every index is rebuilt: ${BLOCKS_WRITES}.`,
      safe: 'Use REINDEX ... CONCURRENTLY (PostgreSQL 12+, outside a transaction block).',
    },
  ];
}

export function checkVacuum(s: ParsedStatement, n: VacuumStmt): RawFinding[] {
  if (!n.is_vacuumcmd) return [];
  const full = (n.options ?? []).some(
    (o) =>
      'DefElem' in o &&
      o.DefElem.defname === 'full' &&
      !(o.DefElem.arg && 'Boolean' in o.DefElem.arg && o.DefElem.arg.Boolean.boolval !== true),
  );
  if (!full) return [];
  const relations = (n.rels ?? []).flatMap((r) => ('VacuumRelation' in r ? [tableOf(r.VacuumRelation.relation)] : []));
  const table = relations.length === 1 ? relations[0] : undefined;
  return [
    {
      rule: 'ban-vacuum-full',
      index: s.start,
      ...(table ? { table, hazard: 'rewrite' as const } : {}),
      message: `VACUUM FULL rewrites ${table ? tableText(table) : 'each table'} into a new file under ACCESS EXCLUSIVE: ${BLOCKS_ALL} until the copy is done.`,
      safe: 'Let (auto)vacuum reclaim space in place; to shrink a bloated table online use pg_repack (or REPACK CONCURRENTLY on PostgreSQL 19+).',
    },
  ];
}

export function checkCluster(s: ParsedStatement, n: ClusterStmt): RawFinding[] {
  const table = tableOf(n.relation);
  return [
    {
      rule: 'ban-cluster',
      index: s.start,
      ...(table ? { table, hazard: 'rewrite' as const } : {}),
      message: `CLUSTER rewrites ${table ? tableText(table) : 'each clustered table'} in index order under ACCESS EXCLUSIVE: ${BLOCKS_ALL} until the copy is done.`,
      safe: 'Reorder online with pg_repack --order-by (or REPACK CONCURRENTLY on PostgreSQL 19+), or leave the order to new data.',
    },
  ];
}
