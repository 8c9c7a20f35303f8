import { ConflictError, DdlFailedError, objectName, quoteIdent, type IndexSpec } from '@phaseflag/core';
import { readAttachedIndex, readPartitions, type PartitionInfo } from '../../catalog/partitions.js';
import { readIndexState, type IndexState } from '../../catalog/state.js';
import type { ExecutorContext } from '../../context.js';
import { maxDuration, maxLockWait, type LockMode, type PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { qualify } from '../../sql/text.js';
import { run, type StepOptions } from './step.js';

/**
 * The new column's index on a partitioned table. Postgres refuses CREATE INDEX CONCURRENTLY on a partitioned
 * table, and a plain CREATE INDEX there builds every partition's index under a SHARE lock (writes wait for the
 * whole build). Instead, pgroll style:
 * 1. each leaf partition's index CONCURRENTLY (SHARE UPDATE EXCLUSIVE on that partition: reads and writes go on);
 * 2. for each partitioned table, deepest first and the migration's table last, `CREATE INDEX … ON ONLY` (an empty,
 *    INVALID index: catalog only, a brief SHARE lock on that table) and `ALTER INDEX … ATTACH PARTITION` of each
 *    of its partitions' indexes; Postgres marks the parent index valid once every partition's index is attached.
 * A partition created after step 2 gets its index from Postgres itself (built with the CREATE TABLE … PARTITION OF
 * or ATTACH PARTITION, under that statement's lock); one created during the build is found when apply reads the
 * partitions again and is indexed the same way. Rollback drops the parent index (which takes the attached ones
 * with it), then any index a build left unattached.
 */
const NAME = 'create-index';
type Rel = { readonly schema: string; readonly name: string };

/** The index phaseflag gives a partition: the declared name and the partition's, within 63 bytes. */
export function partitionIndexName(index: IndexSpec, partition: Rel): string {
  return objectName(index.name, partition.name);
}

function statement(
  r: ResolvedMigration,
  lock: LockMode,
  sql: string,
  description: string,
  options: { transactional: boolean; table?: Rel },
): PlannedStatement {
  return {
    step: NAME,
    sql,
    lock,
    transactional: options.transactional,
    description,
    maxLockWaitMs: maxLockWait(lock, r.migration.ddl),
    maxDurationMs: maxDuration(lock, r.migration.ddl),
    ...(options.table ? { table: { schema: options.table.schema, name: options.table.name } } : {}),
  };
}

function root(r: ResolvedMigration): Rel {
  return { schema: r.schema, name: r.table };
}

function indexName(r: ResolvedMigration, index: IndexSpec, rel: Rel): string {
  return rel.schema === r.schema && rel.name === r.table ? index.name : partitionIndexName(index, rel);
}

function unique(index: IndexSpec): string {
  return index.unique ? 'UNIQUE ' : '';
}

function buildLeaf(r: ResolvedMigration, index: IndexSpec, leaf: Rel): PlannedStatement {
  const name = indexName(r, index, leaf);
  return statement(
    r,
    'SHARE UPDATE EXCLUSIVE',
    `CREATE ${unique(index)}INDEX CONCURRENTLY IF NOT EXISTS ${quoteIdent(name)} ON ${qualify(leaf.schema, leaf.name)} (${quoteIdent(r.migration.newColumn.name)})`,
    `build partition ${leaf.schema}.${leaf.name}'s index "${name}" without blocking its reads or writes`,
    { transactional: false },
  );
}

function dropLeaf(r: ResolvedMigration, index: IndexSpec, leaf: Rel, why: string): PlannedStatement {
  const name = indexName(r, index, leaf);
  return statement(
    r,
    'SHARE UPDATE EXCLUSIVE',
    `DROP INDEX CONCURRENTLY IF EXISTS ${qualify(leaf.schema, name)}`,
    `${why} index "${name}" of partition ${leaf.schema}.${leaf.name} without blocking its reads or writes`,
    { transactional: false },
  );
}

function createOnOnly(r: ResolvedMigration, index: IndexSpec, node: Rel): PlannedStatement {
  const name = indexName(r, index, node);
  return statement(
    r,
    'SHARE',
    `CREATE ${unique(index)}INDEX IF NOT EXISTS ${quoteIdent(name)} ON ONLY ${qualify(node.schema, node.name)} (${quoteIdent(r.migration.newColumn.name)})`,
    `create the partitioned index "${name}" on ${node.schema}.${node.name} alone, INVALID until its partitions' indexes are attached (catalog only; writes to the table wait while it holds the lock)`,
    { transactional: true, table: node },
  );
}

function attach(r: ResolvedMigration, index: IndexSpec, node: Rel, child: Rel, childIndex?: string): PlannedStatement {
  const parentName = indexName(r, index, node);
  const childName = childIndex ?? indexName(r, index, child);
  return statement(
    r,
    'ACCESS EXCLUSIVE',
    `ALTER INDEX ${qualify(node.schema, parentName)} ATTACH PARTITION ${qualify(child.schema, childName)}`,
    `attach "${childName}" to "${parentName}": ACCESS SHARE on both tables, ACCESS EXCLUSIVE on the attached index only (queries being planned on ${child.schema}.${child.name} wait for that moment), catalog only`,
    { transactional: true },
  );
}

function dropNode(r: ResolvedMigration, index: IndexSpec, node: Rel): PlannedStatement {
  const name = indexName(r, index, node);
  return statement(
    r,
    'ACCESS EXCLUSIVE',
    `DROP INDEX IF EXISTS ${qualify(node.schema, name)}`,
    `drop the partitioned index "${name}" and the partition indexes attached to it (catalog only, but ACCESS EXCLUSIVE on ${node.schema}.${node.name} and every partition under it: no CONCURRENTLY for a partitioned index)`,
    { transactional: true, table: node },
  );
}

/** Partitioned tables, deepest first, then the migration's table. */
function nodesBottomUp(r: ResolvedMigration, parts: readonly PartitionInfo[]): Rel[] {
  return [...parts.filter((p) => p.partitioned).sort((a, b) => b.level - a.level), root(r)];
}

function childrenOf(parts: readonly PartitionInfo[], node: Rel): PartitionInfo[] {
  return parts.filter((p) => p.parent.schema === node.schema && p.parent.name === node.name);
}

export function planPartitionedIndex(r: ResolvedMigration, index: IndexSpec): PlannedStatement[] {
  const parts = r.partitions ?? [];
  return [
    ...parts
      .filter((p) => !p.partitioned)
      .flatMap((leaf) => [
        dropLeaf(r, index, leaf, 'if a failed build left it INVALID, drop'),
        buildLeaf(r, index, leaf),
      ]),
    ...nodesBottomUp(r, parts).flatMap((node) => [
      createOnOnly(r, index, node),
      ...childrenOf(parts, node).map((child) => attach(r, index, node, child)),
    ]),
  ];
}

export function planPartitionedIndexRollback(r: ResolvedMigration, index: IndexSpec): PlannedStatement[] {
  const parts = r.partitions ?? [];
  return [
    dropNode(r, index, root(r)),
    ...parts.map((p) =>
      p.partitioned ? dropNode(r, index, p) : dropLeaf(r, index, p, 'if a build left it unattached, drop'),
    ),
  ];
}

function foreign(r: ResolvedMigration, index: IndexSpec, s: IndexState & { kind: 'foreign' }): never {
  throw new ConflictError('PF_MIGRATION_CONFLICT', `Cannot build the index of "${r.migration.id}": ${s.detail}.`, {
    value: index.name,
    migrationId: r.migration.id,
    hint: 'Name the index explicitly (newColumn.index.name) with a name not used in the schema or by its partitions.',
  });
}

function state(ctx: ExecutorContext, r: ResolvedMigration, index: IndexSpec, rel: Rel): Promise<IndexState> {
  return readIndexState(
    ctx.knex,
    rel.schema,
    rel.name,
    indexName(r, index, rel),
    r.migration.newColumn.name,
    index.unique,
  );
}

/** One pass over the live partitions: builds what is missing. Returns once the parent index is valid. */
export async function applyPartitionedIndex(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  index: IndexSpec,
  opts?: StepOptions,
): Promise<void> {
  const rounds = (opts?.ddl ?? r.migration.ddl).maxAttempts;
  for (let round = 1; ; round++) {
    const top = await state(ctx, r, index, root(r));
    if (top.kind === 'foreign') foreign(r, index, top);
    if (top.kind === 'ours' && top.valid) return;
    if (round > rounds) {
      throw new DdlFailedError(
        `Index "${index.name}" of "${r.migration.id}" is still invalid after ${rounds} pass(es) over the partitions.`,
        {
          value: index.name,
          migrationId: r.migration.id,
          hint: 'A partition index build kept failing (long transactions, or partitions created and dropped meanwhile): let them finish, then run expand again.',
        },
      );
    }
    const parts = await readPartitions(ctx.knex, r.schema, r.table);
    const attachedTo = (node: Rel, child: Rel) =>
      readAttachedIndex(ctx.knex, node.schema, indexName(r, index, node), child.schema, child.name);
    for (const leaf of parts.filter((p) => !p.partitioned)) {
      if ((await attachedTo(leaf.parent, leaf)) !== null) continue;
      const s = await state(ctx, r, index, leaf);
      if (s.kind === 'foreign') foreign(r, index, s);
      if (s.kind === 'ours' && s.valid) continue;
      if (s.kind === 'ours') await run(ctx, r, dropLeaf(r, index, leaf, 'drop the INVALID'), opts);
      await run(ctx, r, buildLeaf(r, index, leaf), opts);
    }
    for (const node of nodesBottomUp(r, parts)) {
      const s = await state(ctx, r, index, node);
      if (s.kind === 'foreign') foreign(r, index, s);
      if (s.kind === 'missing') await run(ctx, r, createOnOnly(r, index, node), opts);
      for (const child of childrenOf(parts, node)) {
        if ((await attachedTo(node, child)) !== null) continue;
        // A leaf whose build failed this pass has no valid index yet: the next pass builds it again.
        const c = await state(ctx, r, index, child);
        if (c.kind === 'ours' && (c.valid || child.partitioned)) await run(ctx, r, attach(r, index, node, child), opts);
      }
    }
  }
}

/** Drops the parent index (and with it every attached one), then whatever a build left unattached. */
export async function rollbackPartitionedIndex(
  ctx: ExecutorContext,
  r: ResolvedMigration,
  index: IndexSpec,
  opts?: StepOptions,
): Promise<void> {
  if ((await state(ctx, r, index, root(r))).kind === 'ours') await run(ctx, r, dropNode(r, index, root(r)), opts);
  const parts = await readPartitions(ctx.knex, r.schema, r.table);
  // Parents before their partitions: dropping a partitioned index takes the indexes attached to it along.
  for (const p of parts) {
    if ((await state(ctx, r, index, p)).kind !== 'ours') continue;
    await run(ctx, r, p.partitioned ? dropNode(r, index, p) : dropLeaf(r, index, p, 'drop the unattached'), opts);
  }
}
