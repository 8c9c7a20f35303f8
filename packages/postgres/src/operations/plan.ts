import { ATTR, SPAN, type DdlSettings, type Migration } from '@phaseflag/core';
import { buildBatchStatements } from './backfill/statements.js';
import { resolveMigration } from '../catalog/resolve.js';
import type { ExecutorContext } from '../context.js';
import {
  describeRowKey,
  rowKeyOf,
  type ColumnInfo,
  type ResolvedMigration,
  type RowKeyInfo,
} from '../catalog/resolved.js';
import {
  letsApplicationThrough,
  lockTimeoutFor,
  strongerLock,
  waitsOnce,
  type PlannedStatement,
} from './planned-statement.js';
import { carriedDefault, defaultCarryRefusal } from './steps/carry-default.js';
import {
  contractStepsAfter,
  contractStepsBefore,
  dualWriteSteps,
  expandSteps,
  rollbackSteps,
  verifySteps,
} from './steps/phase-steps.js';
import type { PlanContext, Step } from './steps/step.js';
import { onTable } from './steps/step.js';
import { withSpan } from '../telemetry/with-span.js';
import { verifyWalk } from './verify.js';

export type PlanPhase = 'expand' | 'dual-write' | 'backfill' | 'verify' | 'read-new' | 'contract' | 'rollback';

export interface PhasePlan {
  readonly phase: PlanPhase;
  readonly summary: string;
  /** In the order they run. Steps skip, at apply time, statements whose effect the catalog already shows. */
  readonly statements: readonly PlannedStatement[];
  /** The most this phase may spend waiting for table locks in all (sum over its statements). */
  readonly maxLockWaitMs: number;
  /**
   * The part of maxLockWaitMs spent waiting for locks that queue ahead of application queries (SHARE and
   * stronger), each attempt at most lock_timeout; the rest waits behind locks that let reads and writes through.
   */
  readonly maxBlockingLockWaitMs: number;
  /** The strongest lock any statement of the phase takes. */
  readonly strongestLock: PlannedStatement['lock'];
  readonly notes: readonly string[];
}

/** Everything a migration would do, phase by phase, and nothing executed. Plain data: JSON.stringify it as is. */
export interface MigrationPlan {
  readonly migrationId: string;
  readonly table: { readonly schema: string; readonly name: string };
  readonly primaryKey: readonly string[];
  /** What the rows are walked by: the primary key, or the unique not-null key chosen when there is none. */
  readonly key: RowKeyInfo;
  readonly oldColumn: ColumnInfo | null;
  /** Contract dropped the old column (recorded in the state store): the statements that name it are history. */
  readonly oldColumnDropped: boolean;
  readonly newColumn: {
    readonly name: string;
    readonly type: string;
    readonly exists: boolean;
    readonly nullable: boolean;
    readonly default: string | null;
  };
  /** 'replace' (the new column takes the old one's place) or 'derive' (it stays beside its source, kept by the trigger). */
  readonly intent: 'replace' | 'derive';
  /**
   * The old column's DEFAULT and what contract does with it: `carried` is the new column's default derived from
   * it (set at contract), null when it is not carried (`why`). Null when the old column has no default.
   */
  readonly oldColumnDefault: {
    readonly sql: string;
    readonly constant: boolean;
    readonly carried: string | null;
    readonly why: string | null;
  } | null;
  readonly rowsEstimate: number;
  readonly ddl: DdlSettings;
  readonly phases: readonly PhasePlan[];
}

export interface PlanOptions {
  /** Contract drops the old column (default false: it stays, nullable). */
  dropOldColumn?: boolean;
  /** Rollback drops the new column (default: when phaseflag creates it, i.e. it does not exist yet). */
  dropNewColumnOnRollback?: boolean;
}

/** Resolves the migration against the live catalog (read only) and lays out every phase. */
export async function planMigration(
  ctx: ExecutorContext,
  migration: Migration,
  options: PlanOptions = {},
): Promise<MigrationPlan> {
  return withSpan(ctx.tracer, SPAN.plan, { attributes: { [ATTR.migrationId]: migration.id } }, async (span) => {
    const plan = planResolved(
      await resolveMigration(ctx.knex, migration, { stateSchema: ctx.stateSchema }),
      ctx,
      options,
    );
    span.setAttribute(ATTR.table, `${plan.table.schema}.${plan.table.name}`);
    return plan;
  });
}

/** The plan of an already resolved migration: pure, no database access. */
export function planResolved(r: ResolvedMigration, ctx: PlanContext, options: PlanOptions = {}): MigrationPlan {
  const m = r.migration;
  const of = (steps: readonly Step[]) => steps.flatMap((s) => s.plan(r, ctx));
  const phase = (p: PlanPhase, summary: string, statements: PlannedStatement[], notes: string[] = []): PhasePlan => ({
    phase: p,
    summary,
    statements,
    notes,
    maxLockWaitMs: statements.reduce((sum, s) => sum + s.maxLockWaitMs, 0),
    maxBlockingLockWaitMs: statements.reduce(
      (sum, s) => sum + (letsApplicationThrough(s.lock) ? 0 : s.maxLockWaitMs),
      0,
    ),
    strongestLock: statements.reduce<PlannedStatement['lock']>((a, s) => strongerLock(a, s.lock), 'NONE'),
  });
  const dual = of(dualWriteSteps(r));
  const dropNew = options.dropNewColumnOnRollback ?? !r.newColumnExists;
  return {
    migrationId: m.id,
    table: { schema: r.schema, name: r.table },
    primaryKey: r.primaryKey.map((c) => c.name),
    key: rowKeyOf(r),
    oldColumn: r.oldColumn,
    oldColumnDropped: r.oldColumnDropped,
    newColumn: {
      name: m.newColumn.name,
      type: r.newColumnType,
      exists: r.newColumnExists,
      nullable: m.newColumn.nullable,
      default: r.newColumnDefaultSql,
    },
    intent: m.intent,
    oldColumnDefault: r.oldColumnDefault
      ? {
          sql: r.oldColumnDefault.sql,
          constant: r.oldColumnDefault.constant,
          carried: carriedDefault(r),
          why:
            carriedDefault(r) !== null
              ? null
              : m.intent === 'derive'
                ? 'a derived column keeps its source (and its default)'
                : m.newColumn.default !== undefined
                  ? 'the migration declares its own default'
                  : r.oldColumnDefault.notCarriedBecause,
        }
      : null,
    rowsEstimate: r.rowsEstimate,
    ddl: { ...m.ddl },
    phases: [
      phase(
        'expand',
        'Add the new column (and its index and check) without rewriting or blocking the table.',
        of(expandSteps(r)),
        [
          `Each ACCESS EXCLUSIVE statement waits at most lock_timeout (${m.ddl.lockTimeoutMs} ms) per attempt, then lets queued queries through and retries (up to ${m.ddl.maxAttempts} attempts)${m.ddl.longTransactionMs === null ? '' : `; while a transaction open longer than ${m.ddl.longTransactionMs} ms holds the table it holds back without queueing, within the same budget`}.`,
          ...(of(expandSteps(r)).some((st) => letsApplicationThrough(st.lock))
            ? [
                `SHARE UPDATE EXCLUSIVE statements let reads and writes through while they wait (a concurrent index build also waits for every older transaction), so they wait up to ${lockTimeoutFor('SHARE UPDATE EXCLUSIVE', m.ddl)} ms per attempt (ddl.nonBlockingLockTimeoutMs).`,
              ]
            : []),
        ],
      ),
      phase(
        'dual-write',
        dual.length > 0
          ? 'Install the sync trigger; services start writing both columns.'
          : 'Services start writing both columns (no sync trigger).',
        dual,
        dual.length > 0
          ? ['The trigger fills whichever column a writer left out, for writers that do not embed phaseflag.']
          : [
              m.sync.trigger
                ? 'No backfill or reverse expression: there is nothing for a trigger to compute.'
                : 'sync.trigger is off: every writer must write both columns itself.',
            ],
      ),
      backfillPhase(r, ctx),
      phase(
        'verify',
        `Prove, row by row, that the new column equals the backfill expression${r.references ? ' and names a row of the referenced table; then add and validate the foreign key' : ''}.`,
        [verifyWalk(r), ...of(verifySteps(r))],
        [
          "ACCESS SHARE conflicts only with ACCESS EXCLUSIVE; phaseflag's own DDL gives such locks up after lock_timeout.",
          ...(r.references
            ? [
                'The foreign key is added only after a clean walk: from then on a write whose value has no parent fails. A row written without one since the walk fails VALIDATE; the constraint is dropped again and verify fails naming the row.',
              ]
            : []),
        ],
      ),
      phase(
        'read-new',
        'Reads move to the new column, request by request, as the read-new flag rolls out.',
        [],
        ['No DDL.'],
      ),
      phase(
        'contract',
        "Stop writing the old column and enforce the new column's constraints. Irreversible.",
        [...of(contractStepsBefore(r, options)), ...of(contractStepsAfter(r, options))],
        contractNotes(r, options),
      ),
      phase(
        'rollback',
        'Go back to the old column only: reads and writes switch at once, then the new objects are dropped.',
        of(rollbackSteps(r, { dropNewColumn: dropNew })),
        [
          dropNew
            ? 'The new column is dropped only if this migration created it.'
            : 'The new column existed before this migration and is kept.',
        ],
      ),
    ],
  };
}

function contractNotes(r: ResolvedMigration, options: PlanOptions): string[] {
  const m = r.migration;
  const notes =
    m.intent === 'derive'
      ? [
          `"${m.newColumn.name}" is derived from "${m.oldColumn}": the sync trigger stays and keeps it derived on every later write; the source column is never dropped.`,
        ]
      : [
          'Order matters: the old column loses NOT NULL before the phase change (while every writer still fills it); after the grace period the new column gets NOT NULL while the trigger still fills it, then the trigger goes (it names the old column), then the old column if asked.',
        ];
  const carried = carriedDefault(r);
  if (carried !== null)
    notes.push(
      `The old column's default ${r.oldColumnDefault!.sql} is carried over to "${m.newColumn.name}" as ${carried}, in the trigger's drop transaction.`,
    );
  const lost = defaultCarryRefusal(r, options.dropOldColumn === true);
  if (lost) notes.push(`Contract will be refused (PF_DEFAULT_NOT_CARRIED): ${lost.reason}. ${lost.hint}`);
  if (r.partitions)
    notes.push(
      `Partitioned table (${r.partitions.length} partition(s)): each ALTER TABLE on it reaches every partition. ADD … NOT VALID, SET NOT NULL and the drops take ACCESS EXCLUSIVE on the table and every partition for a catalog change (SET NOT NULL is proved per partition from the validated check, without a scan); VALIDATE scans each partition under SHARE UPDATE EXCLUSIVE.`,
    );
  return notes;
}

function backfillPhase(r: ResolvedMigration, ctx: PlanContext): PhasePlan {
  const m = r.migration;
  if (m.backfill === null) {
    return {
      phase: 'backfill',
      summary: 'Nothing to copy: the migration has no backfill expression.',
      statements: [],
      maxLockWaitMs: 0,
      maxBlockingLockWaitMs: 0,
      strongestLock: 'NONE',
      notes: [],
    };
  }
  const batch = buildBatchStatements(r, ctx.stateSchema, m.backfill);
  const stmt: PlannedStatement = {
    ...onTable(
      r,
      'backfill-batch',
      'ROW EXCLUSIVE',
      batch.updateNext.trim().replace(/\n\s+/g, '\n'),
      `one batch: up to ${m.batch.size} rows after the checkpoint ($1) up to the batch's last key ($2), in one short transaction that also moves the checkpoint`,
    ),
    ...waitsOnce(m.ddl.lockTimeoutMs),
  };
  return {
    phase: 'backfill',
    summary: `Copy ${r.rowsEstimate} (estimated) rows in batches of the ${describeRowKey(r)}.`,
    statements: [stmt],
    maxLockWaitMs: stmt.maxLockWaitMs,
    maxBlockingLockWaitMs: 0,
    strongestLock: 'ROW EXCLUSIVE',
    notes: [
      "ROW EXCLUSIVE is the lock of any UPDATE: it conflicts with no application query, only with DDL. Row locks are held on one batch's rows for the length of that batch.",
      `Batches adapt towards ${m.batch.targetBatchMs} ms (sizes ${m.batch.minSize}..${m.batch.maxSize}), pause ${m.batch.pauseMs} ms between batches, ${m.batch.workers} worker(s); the backfill resumes from its checkpoint after a crash.`,
    ],
  };
}
