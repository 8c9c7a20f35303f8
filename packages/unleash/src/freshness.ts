/**
 * How current the client's flag data is. The client keeps serving its last data forever when Unleash goes away;
 * phaseflag wants to know how old that data is, so a flag turned off during an outage cannot be read as on for
 * hours. Known means: there is data, and it was confirmed by Unleash (or written to the backup file, or loaded
 * from bootstrap) no longer than `staleAfterMs` ago.
 */
export type DataOrigin = 'unleash' | 'bootstrap' | 'backup';

export interface FreshnessStatus {
  /** There is data, confirmed within staleAfterMs: the source answers from it. */
  readonly known: boolean;
  /** Last time Unleash answered a poll (changed or unchanged). */
  readonly lastSyncAt?: Date;
  /** When the data in use was last confirmed (a sync, the backup file's mtime, a bootstrap load). */
  readonly knownAsOf?: Date;
  /** Where the data in use came from. */
  readonly origin?: DataOrigin;
  /** First failed poll since the last successful one; cleared by the next success. */
  readonly unreachableSince?: Date;
  /** The last failure seen, for logs (scrubbed of the tokens and URL passwords the source knows). */
  readonly lastError?: string;
  /**
   * Unleash refused the client's token (401 or 403): unleash-client stops polling, so the data will not come by
   * waiting. Cleared by the next successful poll.
   */
  readonly rejectedStatus?: 401 | 403;
}

export class Freshness {
  private knownAsOf: number | undefined;
  private lastSyncAt: number | undefined;
  private unreachableSince: number | undefined;
  private origin: DataOrigin | undefined;
  private lastError: string | undefined;
  private rejectedStatus: 401 | 403 | undefined;

  constructor(private readonly staleAfterMs: number) {}

  /** Unleash answered a poll; the data in use is current as of `now`. */
  synced(now: number): void {
    this.knownAsOf = now;
    this.lastSyncAt = now;
    this.unreachableSince = undefined;
    this.rejectedStatus = undefined;
    this.origin = 'unleash';
  }

  /** Data arrived without Unleash (bootstrap at start-up, a backup file): current as of `asOf`, if newer than what we hold. */
  loaded(origin: Exclude<DataOrigin, 'unleash'>, asOf: number): void {
    if (this.knownAsOf !== undefined && this.knownAsOf >= asOf) return;
    this.knownAsOf = asOf;
    this.origin = origin;
  }

  /** A failed poll; true for the first of an outage. A 401/403 ("<url> responded 401 which means your API key…") is a rejection. */
  failed(now: number, message: string): boolean {
    this.lastError = message;
    const refused = /responded (401|403)\b/.exec(message);
    if (refused) this.rejectedStatus = Number(refused[1]) as 401 | 403;
    if (this.unreachableSince !== undefined) return false;
    this.unreachableSince = now;
    return true;
  }

  isKnown(now: number): boolean {
    return this.knownAsOf !== undefined && now - this.knownAsOf <= this.staleAfterMs;
  }

  /** When the data in use turns stale, or undefined when there is none. */
  staleAt(): number | undefined {
    return this.knownAsOf === undefined ? undefined : this.knownAsOf + this.staleAfterMs;
  }

  get hasSynced(): boolean {
    return this.lastSyncAt !== undefined;
  }

  status(now: number): FreshnessStatus {
    const date = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms));
    return {
      known: this.isKnown(now),
      ...(this.lastSyncAt === undefined ? {} : { lastSyncAt: date(this.lastSyncAt) }),
      ...(this.knownAsOf === undefined ? {} : { knownAsOf: date(this.knownAsOf) }),
      ...(this.origin === undefined ? {} : { origin: this.origin }),
      ...(this.unreachableSince === undefined ? {} : { unreachableSince: date(this.unreachableSince) }),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      ...(this.rejectedStatus === undefined ? {} : { rejectedStatus: this.rejectedStatus }),
    };
  }
}
