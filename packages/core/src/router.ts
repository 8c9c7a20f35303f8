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

export interface RouterOptions {
  flags: FlagSource;
  /** The phase as last read from the state store; unknown until then. */
  snapshot?: PhaseSnapshot;
}

/**
 * Tells application code which physical columns to use for one migration and one request. It never reads the
 * new column before the database says `verified` (or later) AND the read-new flag is on for the request, whatever
 * the flags say; an unknown flag reads old. Writes follow the phase alone, which comes from the database.
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

  constructor(migration: Migration, options: RouterOptions) {
    this.migration = migration;
    this.flags = options.flags;
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

  /** Takes a newer snapshot from the state store; older or equal versions are ignored (events may arrive out of order). */
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
        return this.readOldWriteBoth;
      case 'verified':
      case 'read-new':
        return this.flags.isEnabled(this.migration.flags.readNew, context) === true ? this.readNewWriteBoth : this.readOldWriteBoth;
      case 'contracted':
        // A derived column's source stays authoritative: writes keep going to it (and the trigger derives).
        return this.migration.intent === 'derive' ? this.readNewWriteBoth : this.readNewWriteNew;
      default:
        // pending, expanded, rolled-back, unknown: the new column may not exist (or may be about to go).
        return this.readOldWriteOld;
    }
  }

  /** The physical column to read for this request (counted for heartbeats). */
  readColumn(context?: FlagContext): string | null {
    const d = this.decide(context);
    if (d.read === 'old') this.oldReads++;
    else this.newReads++;
    return d.readColumn;
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
