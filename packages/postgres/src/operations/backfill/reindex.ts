import { SpanStatusCode, type Context, type Span } from '@opentelemetry/api';
import { ATTR, isPhaseflagError } from '@phaseflag/core';
import type { ExecutorContext } from '../../context.js';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import { pgError, SQLSTATE } from '../../sql/pg-error.js';
import { qualify } from '../../sql/text.js';
import { withSpan } from '../../telemetry/with-span.js';
import { backoffMs, runDdl } from '../ddl.js';
import { maxDuration, maxLockWait, type PlannedStatement } from '../planned-statement.js';
import { grew, indexBytes, leftoversOf, listLeafIndexes, type IndexFacts, type Leftover } from './reindex-catalog.js';
import { readMigrationRow } from './state.js';

/** Span of one index rebuilt (or found bloated and not rebuilt) after a completed backfill. */
export const REINDEX_SPAN = 'phaseflag.backfill.reindex';

export const REINDEX_ATTR = {
  index: 'phaseflag.index',
  bytesBefore: 'phaseflag.index.bytes_before',
  bytesAfter: 'phaseflag.index.bytes_after',
  freshBytes: 'phaseflag.index.fresh_bytes_estimate',
  ms: 'phaseflag.reindex.ms',
  leftoversDropped: 'phaseflag.reindex.leftovers_dropped',
  outcome: 'phaseflag.reindex.outcome',
} as const;

/** Attempts per index: a failed attempt (lock_timeout, a cancel) threw its build away, so each retry costs a build. */
const ATTEMPTS = 3;

export interface ReindexSettings {
  /** Rebuild the indexes the backfill bloated once it completes (default true). */
  enabled: boolean;
}

export interface ReindexTotals {
  reindexes: number;
  reindexMs: number;
}

/**
 * Gives back what a backfill leaves in the table's indexes. Its UPDATEs cannot stay on their page (HOT) on pages
 * filled to the brim, so every index gets an entry for each new row version, and a btree never returns the leaf
 * pages its VACUUMs empty: the primary key ends about twice its size. Once the backfill has completed (after the
 * reclaimer's last VACUUM, before the migration moves to backfilled), each index that is larger than a fresh build
 * would be (reindex-catalog.ts: `grew`) is rebuilt with `REINDEX INDEX CONCURRENTLY`, which takes SHARE UPDATE
 * EXCLUSIVE on the table: reads and writes go on; other DDL and VACUUM wait for it.
 *
 * - Each index is its own statement and span (a partitioned table's leaf partitions one by one), run by runDdl:
 *   outside a transaction, lock_timeout as for the other CONCURRENTLY statements (ddl.nonBlockingLockTimeoutMs),
 *   statement_timeout ddl.statementTimeoutMs, marked as phaseflag's own DDL for the DDL watch.
 * - A failed or cancelled REINDEX CONCURRENTLY leaves an INVALID `<name>_ccnew` copy that every write still
 *   maintains: it is dropped (DROP INDEX CONCURRENTLY) before the index is rebuilt, after a failed attempt, and when
 *   a previous run left one.
 * - Failures never fail the backfill: every row is right whatever the index's size. A failure is a warning and an
 *   ERROR span, and the next index is tried; the operator may run the REINDEX later.
 * - The run stops between indexes when the phase leaves backfilling (pause, rollback) or the caller aborts; an
 *   abort cancels the REINDEX in flight and drops its leftover.
 */
export class IndexRebuilder {
  readonly totals: ReindexTotals = { reindexes: 0, reindexMs: 0 };

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly r: ResolvedMigration,
    private readonly parent: Context,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Never throws: whatever goes wrong here, the backfill has completed (a lost connection included). */
  async run(): Promise<void> {
    try {
      await this.rebuildGrown();
    } catch (error) {
      this.warn(`the index rebuild of ${this.r.schema}.${this.r.table} stopped`, error);
    }
  }

  private async rebuildGrown(): Promise<void> {
    const indexes = await listLeafIndexes(this.ctx.knex, this.r.schema, this.r.table);
    for (const index of indexes.filter((x) => x.valid)) {
      if (!(await this.stillBackfilling())) return;
      const decision = grew(index);
      const leftovers = leftoversOf(index, indexes);
      if (!decision.grew && leftovers.length === 0) continue;
      const stop = await this.rebuild(index, decision.grew, decision.freshBytes, leftovers);
      if (stop) return;
    }
  }

  /** Rebuilds one index (or only drops its leftovers); true when the run must stop (abort, no privilege). */
  private async rebuild(
    index: IndexFacts,
    rebuild: boolean,
    freshBytes: number | null,
    leftovers: readonly Leftover[],
  ): Promise<boolean> {
    const name = `${index.schema}.${index.name}`;
    return withSpan(
      this.ctx.tracer,
      REINDEX_SPAN,
      {
        attributes: {
          [ATTR.migrationId]: this.r.migration.id,
          [ATTR.table]: `${index.schema}.${index.table}`,
          [REINDEX_ATTR.index]: name,
          [REINDEX_ATTR.bytesBefore]: index.bytes,
          ...(freshBytes === null ? {} : { [REINDEX_ATTR.freshBytes]: freshBytes }),
        },
      },
      async (span) => {
        const started = this.ctx.clock.now();
        let dropped = 0;
        let outcome = 'leftovers-dropped';
        try {
          dropped += await this.dropLeftovers(leftovers);
          for (let attempt = 1; rebuild; attempt++) {
            try {
              await runDdl(this.ctx, reindexStatement(index, this.r), this.ddlOptions(this.signal));
              this.totals.reindexes++;
              outcome = 'rebuilt';
              break;
            } catch (error) {
              // Whatever stopped it, the copy it was building may be left behind, INVALID.
              dropped += await this.dropLeftovers(await this.currentLeftovers(index));
              if (this.signal?.aborted) {
                outcome = 'aborted';
                return true;
              }
              const pg = pgError(error);
              const lockTrouble = isPhaseflagError(error, 'PF_LOCK_TIMEOUT') || pg.code === SQLSTATE.lockNotAvailable;
              if (!lockTrouble || attempt >= ATTEMPTS) throw error;
              span.addEvent('lock_timeout', { attempt });
              await this.ctx.clock.sleep(backoffMs(attempt, this.r.migration.ddl), this.signal);
            }
          }
          return false;
        } catch (error) {
          outcome = 'failed';
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          this.warn(
            `REINDEX INDEX CONCURRENTLY ${name} failed; the backfill is complete, the index keeps its size`,
            error,
          );
          // Without the privilege (REINDEX needs to own the table) no other index will fare better.
          return pgError(error).code === '42501' || hasCode(error, '42501');
        } finally {
          const ms = this.ctx.clock.now() - started;
          this.totals.reindexMs += ms;
          await this.finishSpan(span, index, ms, dropped, outcome);
        }
      },
      { parent: this.parent },
    );
  }

  private async finishSpan(span: Span, index: IndexFacts, ms: number, dropped: number, outcome: string) {
    const after = await indexBytes(this.ctx.knex, index.schema, index.name).catch(() => null);
    span.setAttributes({
      [REINDEX_ATTR.ms]: ms,
      [REINDEX_ATTR.leftoversDropped]: dropped,
      [REINDEX_ATTR.outcome]: outcome,
      ...(after === null ? {} : { [REINDEX_ATTR.bytesAfter]: after }),
    });
    this.ctx.logger.info(`backfill of ${this.r.migration.id}: index ${index.schema}.${index.name} ${outcome}`, {
      migrationId: this.r.migration.id,
      index: `${index.schema}.${index.name}`,
      bytesBefore: index.bytes,
      bytesAfter: after,
      ms,
    });
  }

  private async currentLeftovers(index: IndexFacts): Promise<Leftover[]> {
    const all = await listLeafIndexes(this.ctx.knex, this.r.schema, this.r.table);
    return leftoversOf(index, all);
  }

  /** Drops leftovers CONCURRENTLY (never cancelled by the caller's abort: a leftover must not stay). */
  private async dropLeftovers(leftovers: readonly Leftover[]): Promise<number> {
    let n = 0;
    for (const x of leftovers) {
      await runDdl(this.ctx, dropLeftoverStatement(x, this.r), this.ddlOptions(undefined));
      n++;
    }
    return n;
  }

  private ddlOptions(signal: AbortSignal | undefined) {
    // One attempt per call: a REINDEX that timed out has left a copy to drop before the next try (see rebuild).
    return { migrationId: this.r.migration.id, ddl: { ...this.r.migration.ddl, maxAttempts: 1 }, signal };
  }

  private async stillBackfilling(): Promise<boolean> {
    if (this.signal?.aborted) return false;
    const row = await readMigrationRow(this.ctx.knex, this.ctx.stateSchema, this.r.migration.id);
    return row?.phase === 'backfilling';
  }

  private warn(what: string, error: unknown): void {
    this.ctx.logger.warn(`backfill of ${this.r.migration.id}: ${what}: ${(error as Error).message}`, {
      migrationId: this.r.migration.id,
      hint: 'Run REINDEX INDEX CONCURRENTLY on the index yourself when it suits (it takes SHARE UPDATE EXCLUSIVE: reads and writes go on).',
    });
  }
}

function hasCode(error: unknown, code: string): boolean {
  const value = (error as { value?: { sqlstate?: string } }).value;
  return value?.sqlstate === code;
}

/** `REINDEX INDEX CONCURRENTLY`: SHARE UPDATE EXCLUSIVE on the table, outside a transaction block. */
export function reindexStatement(index: IndexFacts, r: ResolvedMigration): PlannedStatement {
  const ddl = r.migration.ddl;
  return {
    step: 'reindex',
    sql: `REINDEX INDEX CONCURRENTLY ${qualify(index.schema, index.name)}`,
    lock: 'SHARE UPDATE EXCLUSIVE',
    maxLockWaitMs: maxLockWait('SHARE UPDATE EXCLUSIVE', { ...ddl, maxAttempts: ATTEMPTS }),
    maxDurationMs: maxDuration('SHARE UPDATE EXCLUSIVE', { ...ddl, maxAttempts: ATTEMPTS }),
    transactional: false,
    description: `REINDEX INDEX CONCURRENTLY of ${index.schema}.${index.name} after the backfill`,
    table: { schema: index.schema, name: index.table },
  };
}

/** `DROP INDEX CONCURRENTLY` of a REINDEX's INVALID leftover: SHARE UPDATE EXCLUSIVE on the table. */
function dropLeftoverStatement(x: Leftover, r: ResolvedMigration): PlannedStatement {
  const ddl = r.migration.ddl;
  return {
    step: 'reindex',
    sql: `DROP INDEX CONCURRENTLY IF EXISTS ${qualify(x.schema, x.name)}`,
    lock: 'SHARE UPDATE EXCLUSIVE',
    maxLockWaitMs: maxLockWait('SHARE UPDATE EXCLUSIVE', { ...ddl, maxAttempts: 1 }),
    maxDurationMs: maxDuration('SHARE UPDATE EXCLUSIVE', { ...ddl, maxAttempts: 1 }),
    transactional: false,
    description: `DROP INDEX CONCURRENTLY of ${x.schema}.${x.name}, left INVALID by a REINDEX CONCURRENTLY`,
    table: { schema: x.schema, name: x.table },
  };
}
