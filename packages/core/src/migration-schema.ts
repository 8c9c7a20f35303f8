import { z } from 'zod';

/**
 * The declaration's schema: the fields a migration may have, their limits and their defaults. `defineMigration`
 * parses with it once and then checks what a schema cannot say (fields that must agree with each other).
 */
const constantDefault = z.union([z.string(), z.number().finite(), z.boolean(), z.null()]);

const indexSpec = z.union([
  z.boolean(),
  z.strictObject({ name: z.string().optional(), unique: z.boolean().default(false) }),
]);

const checkSpec = z.union([
  z.string().min(1),
  z.strictObject({ name: z.string().optional(), expression: z.string().min(1) }),
]);

/**
 * A foreign key on the new column: `table` ("schema.table", "table" or { schema, name }) and its `column`, which
 * must carry a primary key or unique constraint of its own. Implies an index on the new column.
 */
const referencesSpec = z.strictObject({
  table: z.union([z.string(), z.strictObject({ schema: z.string().optional(), name: z.string() })]),
  column: z.string(),
  onDelete: z.enum(['no action', 'restrict', 'cascade', 'set null']).default('no action'),
  name: z.string().optional(),
});

const batchSchema = z.strictObject({
  /** Rows per batch to start with; adapted towards targetBatchMs when adaptive. */
  size: z.number().int().min(1).max(1_000_000).default(5000),
  minSize: z.number().int().min(1).default(100),
  maxSize: z.number().int().min(1).default(100_000),
  /**
   * Aim each batch at this duration (pt-online-schema-change's --chunk-time); 0 turns adaptation off. A batch holds
   * the row locks of the rows it changed until it commits, so this is about the longest an application write to one
   * of those rows waits: 30 ms keeps it under 50 ms, and the batch's fixed cost (three round trips, about 1.5 ms)
   * stays a few per cent of it.
   */
  targetBatchMs: z.number().min(0).max(60_000).default(30),
  /** Sleep between batches (pgroll's --backfill-batch-delay). */
  pauseMs: z.number().min(0).max(600_000).default(0),
  /** Workers over disjoint key ranges. */
  workers: z.number().int().min(1).max(32).default(1),
});

const throttleSchema = z.strictObject({
  /** Hold back while any streaming replica is further behind than this many bytes (gh-ost's --max-lag-millis, in bytes). */
  maxReplicaLagBytes: z.number().int().min(0).nullable().default(null),
  /** Hold back while any streaming replica's replay_lag exceeds this (milliseconds). */
  maxReplicaLagMs: z.number().int().min(0).nullable().default(null),
  /** A query returning one row with one boolean column; true means "hold back now" (gh-ost's --throttle-query). */
  query: z.string().min(1).nullable().default(null),
  /** How long to wait before checking again while throttled. */
  checkIntervalMs: z.number().int().min(10).max(60_000).default(500),
  /**
   * Watch the application while batches run (a connection of its own, every yieldSampleMs): when one of its
   * statements waits on a row a worker holds, the next batches shrink (halved, down to batch.minSize, growing back
   * once no wait is seen for a second) and the workers hold back briefly so the queued writes go first.
   */
  yieldToApplication: z.boolean().default(false),
  /**
   * gh-ost's --max-load (Threads_running): hold back while more than this many client backends other than the
   * backfill's own are running a statement (pg_stat_activity state 'active'). null: not watched.
   */
  maxLoad: z.number().int().min(1).max(100_000).nullable().default(null),
  /** How often the application watch (yieldToApplication, maxLoad) samples pg_stat_activity and pg_locks. */
  yieldSampleMs: z.number().int().min(5).max(10_000).default(20),
});

const ddlSchema = z.strictObject({
  /**
   * lock_timeout of statements whose waiting lock would queue application statements behind it (ACCESS EXCLUSIVE,
   * SHARE ROW EXCLUSIVE, SHARE): the longest the application can stall behind one attempt. 400 ms leaves a
   * statement that queued behind an attempt room to run and answer within 500 ms (pgroll's default lock_timeout).
   */
  lockTimeoutMs: z.number().int().min(1).max(600_000).default(400),
  /**
   * Before each attempt of such a statement, a conflicting lock held by a transaction open longer than this is
   * waited out without queueing (the wait counts against maxLockWaitMs); younger holders are short application
   * transactions, and the attempt goes ahead. null: attempt at once, as before (only lock_timeout bounds the stall).
   */
  longTransactionMs: z.number().int().min(0).max(86_400_000).nullable().default(200),
  /**
   * lock_timeout for statements whose waiting lock lets application reads and writes through (SHARE UPDATE
   * EXCLUSIVE and weaker: CREATE/DROP INDEX CONCURRENTLY, VALIDATE CONSTRAINT). A concurrent index build also
   * waits for every older transaction; a short timeout would throw its work away behind any long report.
   */
  nonBlockingLockTimeoutMs: z.number().int().min(1).max(86_400_000).default(60_000),
  statementTimeoutMs: z.number().int().min(0).max(86_400_000).default(0),
  /** 150 × lock_timeout 400 ms: a statement may wait 60 s for its lock in all (queued or holding back). */
  maxAttempts: z.number().int().min(1).max(1000).default(150),
  retryBaseMs: z.number().int().min(0).default(200),
  /** Short: an attempt that failed stalled the application ≤ lock_timeout, and the look before it keeps it rare. */
  retryMaxMs: z.number().int().min(0).default(1000),
});

const flagsSchema = z.strictObject({
  dualWrite: z.string().min(1).optional(),
  backfill: z.string().min(1).optional(),
  readNew: z.string().min(1).optional(),
  contract: z.string().min(1).optional(),
});

/**
 * Shadow reads (see shadow.ts): in `verified`, while the shadow flag is on for a request, `select()` also compares the
 * two columns in SQL at `sampleRatio`; read-new then needs `minCompared` compared rows with at least `minMatchRate`
 * of them matching, summed over instances. `true` takes every default.
 */
const shadowSchema = z.strictObject({
  /** The Unleash flag that turns the comparisons on (default `<id>.shadow`). */
  flag: z.string().min(1).optional(),
  /** Share of reads (0 < r <= 1) that also compare the columns. */
  sampleRatio: z.number().gt(0).max(1).default(1),
  /** Compared rows read-new needs, summed over instances, since the migration became verified. */
  minCompared: z.number().int().min(1).max(1_000_000_000).default(1000),
  /** Share of compared rows that must match (default 1: every one). */
  minMatchRate: z.number().min(0).max(1).default(1),
});

export const migrationSchema = z.strictObject({
  id: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9._-]{0,62}$/i,
      'an id is 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit',
    ),
  table: z.union([z.string(), z.strictObject({ schema: z.string().optional(), name: z.string() })], {
    error: (issue) =>
      issue.input === undefined
        ? 'required: the table to change, "schema.table" or "table" (or { schema, name })'
        : `expected "schema.table", "table" or { schema, name }, got ${JSON.stringify(issue.input)}`,
  }),
  primaryKey: z.union([z.string(), z.array(z.string()).min(1).max(8)]).default('id'),
  oldColumn: z.string().nullable().default(null),
  /**
   * 'replace': the new column takes the old one's place (reads switch to it, contract may drop the old one).
   * 'derive': the new column lives beside its source for good (the sync trigger keeps it derived after contract,
   * the source is never dropped). Default: 'replace'.
   */
  intent: z.enum(['replace', 'derive']).optional(),
  newColumn: z.strictObject({
    name: z.string(),
    type: z.string().min(1).max(200),
    nullable: z.boolean().default(true),
    default: constantDefault.optional(),
    index: indexSpec.default(false),
    check: checkSpec.optional(),
    references: referencesSpec.optional(),
  }),
  backfill: z.string().min(1).nullable().default(null),
  reverse: z.string().min(1).nullable().default(null),
  batch: batchSchema.default(batchSchema.parse({})),
  throttle: throttleSchema.default(throttleSchema.parse({})),
  ddl: ddlSchema.default(ddlSchema.parse({})),
  sync: z.strictObject({ trigger: z.boolean().default(true) }).default({ trigger: true }),
  flags: flagsSchema.default({}),
  shadow: z.union([z.literal(true), shadowSchema]).optional(),
  description: z.string().max(2000).optional(),
});

export type MigrationInput = z.input<typeof migrationSchema>;
export type BatchSettings = z.output<typeof batchSchema>;
export type ThrottleSettings = z.output<typeof throttleSchema>;
export type DdlSettings = z.output<typeof ddlSchema>;
export type ConstantDefault = z.output<typeof constantDefault>;
export type ShadowInput = z.input<typeof shadowSchema>;
export const parseShadowDefaults = (): z.output<typeof shadowSchema> => shadowSchema.parse({});
