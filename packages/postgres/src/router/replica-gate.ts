import { ATTR, METRIC, type Logger, type PhaseSnapshot } from '@phaseflag/core';
import type { Meter } from '@opentelemetry/api';
import type { Knex } from 'knex';

/** What a replica gate works with: the replica to ask, where the recorded position is read, and what it holds. */
export interface ReplicaGateDeps {
  readonly migrationId: string;
  /** The application's knex on the replica its router reads from; asked one cheap read-only query per check. */
  readonly replica: Knex;
  /** The position recorded when the migration became verified, from the primary's state store (null: none). */
  readonly verifiedLsn: () => Promise<string | null>;
  /** Holds the router's reads on the old column in read-new (true) or releases them (false). */
  readonly hold: (held: boolean) => void;
  readonly logger: Logger;
  readonly meter: Meter;
  /** How often the replica is asked while the migration is in read-new. */
  readonly checkMs: number;
}

/** Why reads are held: the replica is behind, could not be asked, or there is no position to compare with. */
type HoldKind = 'lagging' | 'unreachable' | 'unrecorded';

type Verdict =
  | { readonly open: true; readonly detail: string }
  | {
      readonly open: false;
      readonly kind: HoldKind;
      readonly detail: string;
      readonly fields: Record<string, unknown>;
    };

/** `0/3000148` → a number that orders like the WAL position (pg_lsn is two 32-bit hex halves). */
export function lsnValue(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`not a WAL position: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/**
 * Keeps a router's reads on the old column until the replica it reads from has replayed past the WAL position
 * recorded with the verify transition: before that, the replica may miss backfilled rows of the new column, while
 * its old column is whole. Fail safe: reads are held from the start, after every phase change until a check
 * confirms, and whenever the replica cannot be asked. A server that is not in recovery is a primary (the replica
 * was promoted, or the application passed its primary): it has everything.
 *
 * The replica is asked on a timer, and only in read-new (the one phase where the hold changes a read); the recorded
 * position is read from the primary once per phase version. Requests only read the hold the router keeps.
 */
export class ReplicaGate {
  /** The phase version last observed; a check started at an older one is discarded. */
  private version = -1;
  private phase: PhaseSnapshot['phase'] = 'unknown';
  /** The recorded position, read at `lsnVersion`. */
  private lsn: bigint | null = null;
  private lsnText: string | null = null;
  private lsnVersion = -1;
  /** Where the last completed check left reads (`unknown` before the first). */
  private state: 'unknown' | 'open' | HoldKind = 'unknown';
  private checks: Promise<void> = Promise.resolve();
  private running = false;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly deps: ReplicaGateDeps) {
    deps.hold(true);
    this.timer = setInterval(() => {
      if (!this.running && this.phase === 'read-new') void this.check();
    }, deps.checkMs);
    this.timer.unref();
  }

  /**
   * Takes the phase the router applies (same rule as the core Router: newer versions only). Every phase change
   * holds reads until a check at the new version confirms them: only the verify transition sets the recorded
   * position and only rollback clears it, but a router may miss the snapshots in between. Resolves once the check
   * this started (or those already queued) has settled.
   */
  observe(s: PhaseSnapshot): Promise<void> {
    if (s.migrationId !== this.deps.migrationId || s.phase === 'unknown' || s.version <= this.version) {
      return this.checks;
    }
    this.version = s.version;
    this.phase = s.phase;
    this.deps.hold(true);
    return s.phase === 'read-new' ? this.check() : this.checks;
  }

  /** Runs one check after those already queued; resolves when it has settled (it never rejects). */
  check(): Promise<void> {
    const next = this.checks.then(() => this.checkOnce());
    this.checks = next;
    return next;
  }

  private async checkOnce(): Promise<void> {
    if (this.closed || this.phase !== 'read-new') return;
    const version = this.version;
    this.running = true;
    let verdict: Verdict;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A replica that does not answer (a dropped network path) must not leave reads where the last answer put them.
      const bound = Math.max(2000, this.deps.checkMs * 5);
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${bound} ms`)), bound);
      });
      verdict = await Promise.race([this.ask(version), late]);
    } catch (error) {
      const message = (error as Error).message;
      verdict = {
        open: false,
        kind: 'unreachable',
        detail: `the replica cannot be asked (${message})`,
        fields: { error: message },
      };
    } finally {
      clearTimeout(timer);
      this.running = false;
    }
    if (this.closed || version !== this.version) return; // the phase moved on; its own check decides
    this.apply(verdict);
  }

  private async ask(version: number): Promise<Verdict> {
    if (this.lsnVersion !== version) {
      this.lsnText = await this.deps.verifiedLsn();
      this.lsn = this.lsnText === null ? null : lsnValue(this.lsnText);
      this.lsnVersion = version;
    }
    const verified = this.lsn;
    const text = this.lsnText;
    if (verified === null || text === null) {
      return {
        open: false,
        kind: 'unrecorded',
        detail: 'no WAL position was recorded when the migration became verified',
        fields: {},
      };
    }
    // Two functions of the server's own state: no table, no lock, no session state (fine through a pooler).
    const row = (
      await this.deps.replica.raw(
        'SELECT pg_catalog.pg_is_in_recovery() AS in_recovery, pg_catalog.pg_last_wal_replay_lsn()::text AS replay_lsn',
      )
    ).rows[0] as { in_recovery: boolean; replay_lsn: string | null };
    if (!row.in_recovery) return { open: true, detail: 'the server is not in recovery: a primary has everything' };
    const replayed = row.replay_lsn === null ? null : lsnValue(row.replay_lsn);
    if (replayed !== null && replayed >= verified) {
      return { open: true, detail: `it replayed ${row.replay_lsn}, past the verified position ${text}` };
    }
    const fields = {
      [ATTR.verifiedLsn]: text,
      [ATTR.replayLsn]: row.replay_lsn,
      lagBytes: replayed === null ? null : Number(verified - replayed),
    };
    return {
      open: false,
      kind: 'lagging',
      detail: `the replica replayed ${row.replay_lsn ?? 'nothing yet'}, short of the verified position ${text}`,
      fields,
    };
  }

  /** Holds or releases reads; logs (and counts) only where the state changes, never every check. */
  private apply(v: Verdict): void {
    const { migrationId, logger } = this.deps;
    const before = this.state;
    this.deps.hold(!v.open);
    if (v.open) {
      this.state = 'open';
      if (before !== 'open' && before !== 'unknown') {
        logger.info(`phaseflag: ${migrationId}: the replica caught up, reads may use the new column (${v.detail})`, {
          migrationId,
        });
      }
      return;
    }
    this.state = v.kind;
    if (before === v.kind) return;
    if (before === 'open' || before === 'unknown') {
      this.deps.meter
        .createCounter(METRIC.replicaLagHold)
        .add(1, { [ATTR.migrationId]: migrationId, [ATTR.reason]: v.kind });
    }
    logger.warn(`phaseflag: ${migrationId}: reads from the replica stay on the old column: ${v.detail}`, {
      migrationId,
      ...v.fields,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.checks;
  }
}
