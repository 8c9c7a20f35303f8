import type { FlagContext, FlagSource } from './flags.js';
import type { Migration } from './migration.js';
import type { Phase } from './phases.js';
import type { PhaseSnapshot } from './ports.js';

/** Which physical columns one request reads and writes. Decisions are shared frozen objects: no allocation per call. */
export interface RouteDecision {
  readonly read: 'old' | 'new';
  /** The physical column to read, or null where nothing can be read yet (a brand-new column before read-new). */
  readonly readColumn: string | null;
  readonly writeOld: boolean;
  readonly writeNew: boolean;
}

/** A value the database derives from other values of the same row with one of the migration's expressions. */
export class Derived {
  constructor(
    readonly target: string,
    readonly expression: string,
    /** The row as the application supplied it; the expression is evaluated over these values. */
    readonly row: Readonly<Record<string, unknown>>,
  ) {}
}

/**
 * The read rule, the one place it is decided: a request reads the new column only when the database's phase is
 * `read-new` and the read-new flag is on for that request (and always in `contracted`); in every other phase —
 * `verified` included — and whenever the flag is off or unknown, it reads the old column.
 *
 * `verified` reads old so that `readOld()` (read-new → verified) sends every read back by itself, whatever the
 * flag still says; reads move forward again only through the `read-new` phase, which the controller enters when
 * the flag asks for it and no read-old hold stands (see decideNext).
 */
export function readsNewColumn(phase: Phase | 'unknown', readNewFlag: boolean | undefined): boolean {
  if (phase === 'contracted') return true;
  return phase === 'read-new' && readNewFlag === true;
}

export interface RouterOptions {
  flags: FlagSource;
  /** The phase as last read from the state store; unknown until then. */
  snapshot?: PhaseSnapshot;
  /** Draws the shadow sample (default Math.random): a number in [0, 1). */
  random?: () => number;
}

/**
 * Tells application code which physical columns to use for one migration and one request. Reads follow the read
 * rule (`readsNewColumn`): the new column only in `read-new` with the read-new flag on for the request, and in
 * `contracted`; an unknown flag reads old. Writes follow the phase alone, which comes from the database.
 */
export class Router {
  readonly migration: Migration;
  private readonly flags: FlagSource;
  private phase: Phase | 'unknown';
  private version: number;
  private readonly readOldWriteOld: RouteDecision;
  private readonly readOldWriteBoth: RouteDecision;
  private readonly readNewWriteBoth: RouteDecision;
  private readonly readNewWriteNew: RouteDecision;
  /** Reads served from each side since the last `takeReadCounts()` (for heartbeats: "does anyone still read old?"). */
  private oldReads = 0;
  private newReads = 0;
  /** Reads held on the old column whatever the flag says (see holdReads). */
  private held = false;
  private readonly random: () => number;

  constructor(migration: Migration, options: RouterOptions) {
    this.migration = migration;
    this.flags = options.flags;
    this.random = options.random ?? Math.random;
    this.phase = options.snapshot?.phase ?? 'unknown';
    this.version = options.snapshot?.version ?? -1;
    const oldCol = migration.oldColumn;
    const newCol = migration.newColumn.name;
    const hasOld = oldCol !== null;
    this.readOldWriteOld = Object.freeze({ read: 'old', readColumn: oldCol, writeOld: hasOld, writeNew: false });
    this.readOldWriteBoth = Object.freeze({ read: 'old', readColumn: oldCol, writeOld: hasOld, writeNew: true });
    this.readNewWriteBoth = Object.freeze({ read: 'new', readColumn: newCol, writeOld: hasOld, writeNew: true });
    this.readNewWriteNew = Object.freeze({ read: 'new', readColumn: newCol, writeOld: false, writeNew: true });
  }

  /** The phase this router applies. */
  get currentPhase(): Phase | 'unknown' {
    return this.phase;
  }

  /** The version of the phase this router applies (-1 before the store answered). */
  get currentVersion(): number {
    return this.version;
  }

  /**
   * Whether this read also compares the two columns (shadow reads, see shadow.ts): only in `verified`, when the
   * migration declares shadow, the shadow flag is on for the request (unknown: no) and the sample draws it. Never
   * while reads are held (a replica that may not have the verified data). What the read answers is unchanged.
   */
  shadows(context?: FlagContext): boolean {
    const s = this.migration.shadow;
    if (s === null || this.phase !== 'verified' || this.held) return false;
    if (this.flags.isEnabled(s.flag, context) !== true) return false;
    return s.sampleRatio >= 1 || this.random() < s.sampleRatio;
  }

  /** Reads are held on the old column in `read-new` (see holdReads). */
  get readsHeld(): boolean {
    return this.held;
  }

  /**
   * Holds this router's reads on the old column in `read-new`, whatever the read-new flag says, until released: for
   * a router that reads from a replica which has not replayed the verified data yet. Writes are unchanged, and so is
   * `contracted`, where the old column is no longer written (and may be gone) and reads stay on the new column; a
   * held router reports its reads as old, which keeps contract from passing it by.
   */
  holdReads(held: boolean): void {
    this.held = held;
  }

  /**
   * Takes a snapshot from the state store unless its version is older than the one applied (events may arrive out
   * of order); one of the same version is taken again.
   */
  update(snapshot: PhaseSnapshot): void {
    if (snapshot.migrationId !== this.migration.id) return;
    if (snapshot.phase === 'unknown') return; // keep the last known phase: unknown never moves us forward
    if (snapshot.version < this.version) return;
    this.phase = snapshot.phase;
    this.version = snapshot.version;
  }

  decide(context?: FlagContext): RouteDecision {
    switch (this.phase) {
      case 'dual-write':
      case 'backfilling':
      case 'paused':
      case 'backfilled':
      case 'verified':
        return this.readOldWriteBoth;
      case 'read-new':
        if (this.held) return this.readOldWriteBoth;
        // The flag is asked only here: in no other phase can it change what a request reads.
        return readsNewColumn(this.phase, this.flags.isEnabled(this.migration.flags.readNew, context))
          ? this.readNewWriteBoth
          : this.readOldWriteBoth;
      case 'contracted':
        // A derived column's source stays authoritative: writes keep going to it (and the trigger derives).
        return this.migration.intent === 'derive' ? this.readNewWriteBoth : this.readNewWriteNew;
      default:
        // pending, expanded, rolled-back, unknown: the new column may not exist (or may be about to go).
        return this.readOldWriteOld;
    }
  }

  /** The decision for one read, counted for heartbeats ("does anyone still read old?"). */
  decideRead(context?: FlagContext): RouteDecision {
    const d = this.decide(context);
    if (d.read === 'old') this.oldReads++;
    else this.newReads++;
    return d;
  }

  /** The physical column to read for this request (counted for heartbeats). */
  readColumn(context?: FlagContext): string | null {
    return this.decideRead(context).readColumn;
  }

  /**
   * The row to write, with old and new columns filled as the phase demands. Where only one side is supplied,
   * the other becomes a `Derived` value (the backfill or reverse expression over the supplied row), which the
   * Postgres helpers render as SQL. A column the phase does not write is removed.
   */
  writeValues<T extends Record<string, unknown>>(row: T, context?: FlagContext): Record<string, unknown> {
    const d = this.decide(context);
    const oldCol = this.migration.oldColumn;
    const newCol = this.migration.newColumn.name;
    const hasOld = oldCol !== null && Object.prototype.hasOwnProperty.call(row, oldCol);
    const hasNew = Object.prototype.hasOwnProperty.call(row, newCol);
    const out: Record<string, unknown> = { ...row };
    if (d.writeNew && !hasNew && hasOld && this.migration.backfill !== null) {
      out[newCol] = new Derived(newCol, this.migration.backfill, row);
    }
    if (oldCol !== null && d.writeOld && !hasOld && hasNew && this.migration.reverse !== null) {
      out[oldCol] = new Derived(oldCol, this.migration.reverse, row);
    }
    if (!d.writeNew) delete out[newCol];
    if (oldCol !== null && !d.writeOld) delete out[oldCol];
    return out;
  }

  /** Returns and resets the read counters. */
  takeReadCounts(): { oldReads: number; newReads: number } {
    const counts = { oldReads: this.oldReads, newReads: this.newReads };
    this.oldReads = 0;
    this.newReads = 0;
    return counts;
  }
}
