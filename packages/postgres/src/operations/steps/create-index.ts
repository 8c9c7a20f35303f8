import { ConflictError, DdlFailedError, quoteIdent, type IndexSpec } from '@phaseflag/core';
import { readIndexState, type IndexState } from '../../catalog/state.js';
import type { ExecutorContext } from '../../context.js';
import type { PlannedStatement } from '../planned-statement.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { qualify } from '../../sql/text.js';
import {
  applyPartitionedIndex,
  planPartitionedIndex,
  planPartitionedIndexRollback,
  rollbackPartitionedIndex,
} from './partitioned-index.js';
import { onTable, run, tableSql, type Step } from './step.js';

const NAME = 'create-index';

/**
 * SHARE UPDATE EXCLUSIVE, outside a transaction: CONCURRENTLY lets reads and writes continue during the build
 * (it conflicts only with other DDL, VACUUM and ANALYZE), at the price of two table scans and of waiting for
 * every transaction older than the build. A build that fails (lock_timeout while waiting for old transactions,
 * a duplicate under UNIQUE) leaves an INVALID index behind, which `IF NOT EXISTS` would then accept: apply looks
 * at pg_index.indisvalid and drops such an index (also CONCURRENTLY) before building again.
 */
export function createIndexStatement(r: ResolvedMigration, index: IndexSpec): PlannedStatement {
  const col = r.migration.newColumn.name;
  return onTable(
    r,
    NAME,
    'SHARE UPDATE EXCLUSIVE',
    `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY IF NOT EXISTS ${quoteIdent(index.name)} ON ${tableSql(r)} (${quoteIdent(col)})`,
    `build ${index.unique ? 'unique ' : ''}index "${index.name}" on "${col}" without blocking reads or writes`,
    false,
  );
}

export function dropIndexStatement(r: ResolvedMigration, index: IndexSpec, why = 'drop'): PlannedStatement {
  return onTable(
    r,
    NAME,
    'SHARE UPDATE EXCLUSIVE',
    `DROP INDEX CONCURRENTLY IF EXISTS ${qualify(r.schema, index.name)}`,
    `${why} index "${index.name}" without blocking reads or writes`,
    false,
  );
}

function indexOf(r: ResolvedMigration): IndexSpec | null {
  return r.migration.newColumn.index;
}

function state(ctx: ExecutorContext, r: ResolvedMigration, index: IndexSpec): Promise<IndexState> {
  return readIndexState(ctx.knex, r.schema, r.table, index.name, r.migration.newColumn.name, index.unique);
}

export const createIndex: Step = {
  name: NAME,
  plan(r) {
    const index = indexOf(r);
    if (index && r.partitions) return planPartitionedIndex(r, index);
    return index
      ? [dropIndexStatement(r, index, 'if a failed build left it INVALID, drop'), createIndexStatement(r, index)]
      : [];
  },
  planRollback(r) {
    const index = indexOf(r);
    if (index && r.partitions) return planPartitionedIndexRollback(r, index);
    return index ? [dropIndexStatement(r, index)] : [];
  },
  async apply(ctx, r, opts) {
    const index = indexOf(r);
    if (!index) return;
    if (r.partitions) return applyPartitionedIndex(ctx, r, index, opts);
    const rounds = (opts?.ddl ?? r.migration.ddl).maxAttempts;
    for (let round = 1; ; round++) {
      const s = await state(ctx, r, index);
      if (s.kind === 'ours' && s.valid) return;
      if (s.kind === 'foreign') {
        throw new ConflictError(
          'PF_MIGRATION_CONFLICT',
          `Cannot build the index of "${r.migration.id}": ${s.detail}.`,
          {
            value: index.name,
            migrationId: r.migration.id,
            hint: 'Name the index explicitly (newColumn.index.name) with a name not used in the schema.',
          },
        );
      }
      if (round > rounds) {
        throw new DdlFailedError(
          `Index "${index.name}" of "${r.migration.id}" is still invalid after ${rounds} build(s).`,
          {
            value: index.name,
            migrationId: r.migration.id,
            hint: 'Each concurrent build was interrupted (usually waiting for long transactions): let them finish, then run expand again.',
          },
        );
      }
      if (s.kind === 'ours') await run(ctx, r, dropIndexStatement(r, index, 'drop the INVALID'), opts);
      // A build interrupted after its first lock leaves an invalid index and the retry inside runDdl then finds
      // the name taken and skips: the loop looks again and rebuilds.
      await run(ctx, r, createIndexStatement(r, index), opts);
    }
  },
  async rollback(ctx, r, opts) {
    const index = indexOf(r);
    if (!index) return;
    if (r.partitions) return rollbackPartitionedIndex(ctx, r, index, opts);
    // Never drop an index of that name that is not ours.
    if ((await state(ctx, r, index)).kind === 'ours') await run(ctx, r, dropIndexStatement(r, index), opts);
  },
};
