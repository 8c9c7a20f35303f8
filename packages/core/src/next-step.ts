import type { FlagState } from './flags.js';
import type { FlagNames } from './migration.js';
import { decideTransition, type Action, type GuardFacts, type Phase } from './phases.js';

/**
 * The controller's decisions, pure: from the phase and the facts (Postgres, the truth), the phase flags (the
 * operator's intent) and what runs in this process, the one next thing to do. The executor records and applies
 * it; nothing here talks to a database or a flag service.
 *
 * Rules (the README's "The controller" has them as a table):
 * - An unknown flag (source not ready, unreachable, no such flag) never moves anything. A runner that is
 *   already going keeps going: the database says `backfilling`, and stopping it is a phase change too.
 * - "On" means `enabled` (some traffic may get it) for dual-write, backfill and read-new. Contract is
 *   irreversible and all-or-nothing: the contract flag FULLY on (every request, no constraints) is the
 *   confirmation, and only once read-new is fully on too. Dropping the old column is never a flag: it needs
 *   the controller's own `dropOldColumn` option.
 * - Moves back (stop dual-write, pause, read old) come before moves forward; refusals come last, when there is
 *   nothing to do, so one contradictory flag never holds the migration still.
 * - `readOld()` by hand (read-new → verified) holds reads on the old column: while the hold stands, a read-new
 *   flag that is still on is refused (recorded once) instead of moving back to read-new at once; the hold is
 *   released when the flag is seen off (or by `readNew()` by hand), so the next "on" is a new intent.
 * - A failed verify is reported, never repaired automatically: the mismatching rows were written by something
 *   that bypassed dual-write, and re-deriving them before that writer is found would hide it and let it go on.
 *   A person runs `repair()` once the cause is fixed; a repair cut short resumes like any backfill.
 * - A rolled-back migration stays rolled back (the dual-write flag is likely still on from the first try):
 *   `expand()` by hand starts it again, then the flags drive it.
 */
export type PhaseFlag = keyof FlagNames;

/**
 * The four phase flags in phase order, which is also the order they are provisioned, watched and listed in (the
 * one list: Unleash provisioning, the controller and the CLI's status all use it).
 */
export const PHASE_FLAGS: readonly PhaseFlag[] = Object.freeze([
  'dualWrite',
  'backfill',
  'readNew',
  'contract',
] as const satisfies readonly PhaseFlag[]);

export interface PhaseFlagStates {
  readonly dualWrite: FlagState | undefined;
  readonly backfill: FlagState | undefined;
  readonly readNew: FlagState | undefined;
  readonly contract: FlagState | undefined;
}

export interface ReconcileInput {
  /** What Postgres says: the phase and the guard facts (contract's `confirmed` is set here, from the flag). */
  readonly facts: GuardFacts;
  /** What the operator wants; `undefined` where the source does not know. */
  readonly flags: PhaseFlagStates;
  /** A backfill runner of this migration is running in this process. */
  readonly backfillRunning: boolean;
  /** `readOld()` by hand held reads on the old column (migrations.reads_held_at is set). Default false. */
  readonly readsHeld?: boolean;
}

/** What the controller may do: the engine's actions, plus running the backfill of a migration already in `backfilling`. */
export type ControllerAction = Exclude<Action, 'rollback' | 'complete-backfill'> | 'run-backfill' | 'release-reads';

/**
 * Stable names of the refusals the controller records (one event, span and log line each, until something
 * changes): why a flag's request is declined, in `decideNext()`'s vocabulary. Not an `ErrorCode`: nothing is thrown.
 */
export type ControllerRefusalCode =
  | 'read-new-before-verified'
  | 'read-new-held'
  | 'contract-before-read-new'
  | 'contract-before-read-new-fully-on'
  | 'contract-not-fully-on'
  | 'dual-write-off-reads-new'
  | 'dual-write-off-after-backfill'
  | 'guard'
  /**
   * The migration's table drifted from what its phase implies (a column's type changed by hand, an index dropped,
   * the trigger disabled, …). Not decided here (decideNext sees no catalog): the executor inspects the table before
   * it acts on a step decideNext gave, and refuses with the error code's name, PF_DRIFT.
   */
  | 'PF_DRIFT';

export type NextStep =
  /** Nothing to do now; `unknown` names flags whose state is unknown and would be needed to decide. */
  | { readonly kind: 'none'; readonly why: string; readonly unknown?: readonly PhaseFlag[] }
  /** Perform `action`; `flag` is the intent that asked for it (null: the phase alone, e.g. verify after the backfill). */
  | {
      readonly kind: 'act';
      readonly action: ControllerAction;
      readonly flag: PhaseFlag | null;
      readonly from: Phase;
      readonly why: string;
    }
  /** A flag asks for something the database does not allow (yet): record it once, change nothing. */
  | {
      readonly kind: 'refuse';
      readonly action: Action;
      readonly flag: PhaseFlag | null;
      readonly from: Phase;
      readonly code: ControllerRefusalCode;
      readonly reason: string;
      readonly hint: string;
    };

const on = (s: FlagState | undefined): boolean => s?.enabled === true;
const off = (s: FlagState | undefined): boolean => s?.enabled === false;
const fullyOn = (s: FlagState | undefined): boolean => s?.enabled === true && s.fullyOn;

const BEFORE_VERIFIED: readonly Phase[] = ['pending', 'expanded', 'dual-write', 'backfilling', 'paused', 'backfilled'];
const AFTER_BACKFILL_STARTED: readonly Phase[] = ['backfilling', 'paused', 'backfilled', 'verified'];

/** The next step for one migration. Pure and total: every phase and every combination of flags has an answer. */
export function decideNext(input: ReconcileInput): NextStep {
  const { facts, flags } = input;
  const phase = facts.phase;
  const none = (why: string, unknown?: PhaseFlag[]): NextStep =>
    unknown?.length ? { kind: 'none', why, unknown } : { kind: 'none', why };
  const act = (action: ControllerAction, flag: PhaseFlag | null, why: string): NextStep => {
    // Transitions go through the same guard the engine applies under its lock, so a refusal is known (and
    // recorded once) before anything is tried; `run-backfill` and `verify` produce their facts by running.
    if (action === 'run-backfill' || action === 'verify' || action === 'release-reads')
      return { kind: 'act', action, flag, from: phase, why };
    const d = decideTransition(action, {
      ...facts,
      confirmed: action === 'contract' ? fullyOn(flags.contract) : facts.confirmed,
    });
    if (d.allowed) return { kind: 'act', action, flag, from: phase, why };
    return { kind: 'refuse', action, flag, from: phase, code: 'guard', reason: d.reason, hint: d.hint };
  };
  const refuse = (
    action: Action,
    flag: PhaseFlag,
    code: ControllerRefusalCode,
    reason: string,
    hint: string,
  ): NextStep => ({ kind: 'refuse', action, flag, from: phase, code, reason, hint });

  const step = forPhase();
  if (step.kind !== 'none' || step.unknown?.length) return step;
  return refusals() ?? step;

  function forPhase(): NextStep {
    switch (phase) {
      case 'contracted':
        return none('contracted is final');
      case 'rolled-back':
        return none('rolled back: run expand() to start again, then the flags drive it');
      case 'pending':
      case 'expanded':
        if (flags.dualWrite === undefined) return none('the dual-write flag is unknown', ['dualWrite']);
        if (!on(flags.dualWrite)) return none('waiting for the dual-write flag');
        return phase === 'pending'
          ? act('expand', 'dualWrite', 'the dual-write flag is on')
          : act('dual-write', 'dualWrite', 'the dual-write flag is on');
      case 'dual-write':
        if (flags.dualWrite === undefined) return none('the dual-write flag is unknown', ['dualWrite']);
        if (off(flags.dualWrite)) return act('stop-dual-write', 'dualWrite', 'the dual-write flag is off');
        if (flags.backfill === undefined) return none('the backfill flag is unknown', ['backfill']);
        return on(flags.backfill)
          ? act('backfill', 'backfill', 'the backfill flag is on')
          : none('waiting for the backfill flag');
      case 'backfilling':
        if (flags.backfill === undefined)
          return none(
            input.backfillRunning ? 'the backfill flag is unknown; the runner goes on' : 'the backfill flag is unknown',
            ['backfill'],
          );
        if (off(flags.backfill)) return act('pause', 'backfill', 'the backfill flag is off');
        return input.backfillRunning
          ? none('the backfill is running')
          : act('run-backfill', 'backfill', 'backfilling with no runner (its leader stopped or died)');
      case 'paused':
        if (flags.backfill === undefined) return none('the backfill flag is unknown', ['backfill']);
        if ((facts.underivable?.stoppedBackfill ?? 0) > 0) {
          // Resuming would stop on the same row again, and again: a person fixes it and reruns the backfill.
          return none(
            `the backfill stopped on ${facts.underivable!.stoppedBackfill} row(s) it cannot derive; fix them (phaseflag status lists them), then run the backfill by hand`,
          );
        }
        return on(flags.backfill)
          ? act('resume', 'backfill', 'the backfill flag is on again')
          : none('paused by the backfill flag');
      case 'backfilled':
        if (facts.verify?.afterBackfill && !facts.verify.clean) {
          return none(
            `the last verify found ${facts.verify.mismatches} mismatching row(s); fix the cause, then repair them by hand (phaseflag repair <id>, repair()); the controller does not repair by itself`,
          );
        }
        return act('verify', null, 'the backfill is complete');
      case 'verified':
        if (flags.readNew === undefined) return none('the read-new flag is unknown', ['readNew']);
        if (input.readsHeld === true) {
          if (off(flags.readNew))
            return act(
              'release-reads',
              'readNew',
              'the read-new flag is off: the hold read-old placed on reads is released',
            );
          return refuse(
            'read-new',
            'readNew',
            'read-new-held',
            'reads were sent back to the old column by read-old and the read-new flag is still on',
            'Reads stay on the old column until read-new is asked for again: turn the read-new flag off and on again, or run `phaseflag read-new` (readNew()).',
          );
        }
        return on(flags.readNew)
          ? act('read-new', 'readNew', 'the read-new flag is on')
          : none('waiting for the read-new flag');
      case 'read-new':
        if (flags.readNew === undefined) return none('the read-new flag is unknown', ['readNew']);
        if (off(flags.readNew)) return act('read-old', 'readNew', 'the read-new flag is off');
        if (flags.contract === undefined) return none('the contract flag is unknown', ['contract']);
        if (!on(flags.contract)) return none('reads may use the new column; waiting for the contract flag');
        if (!fullyOn(flags.readNew)) return none('contract waits until read-new is fully on'); // refused below
        if (!fullyOn(flags.contract)) return none('contract waits until its flag is fully on'); // refused below
        return act('contract', 'contract', 'the contract flag is fully on and read-new is fully on');
    }
  }

  function refusals(): NextStep | undefined {
    if (phase === 'read-new' && off(flags.dualWrite)) {
      return refuse(
        'stop-dual-write',
        'dualWrite',
        'dual-write-off-reads-new',
        'the dual-write flag is off while reads use the new column',
        'Both columns stay written until contract. Turn read-new off first (reads go back to the old column); to abandon the migration, roll it back.',
      );
    }
    if (AFTER_BACKFILL_STARTED.includes(phase) && off(flags.dualWrite)) {
      return refuse(
        'stop-dual-write',
        'dualWrite',
        'dual-write-off-after-backfill',
        `the dual-write flag is off but the migration is ${phase}: dual-write stops only from dual-write`,
        'Turn the dual-write flag back on; to abandon the migration, roll it back.',
      );
    }
    if (BEFORE_VERIFIED.includes(phase) && on(flags.readNew)) {
      return refuse(
        'read-new',
        'readNew',
        'read-new-before-verified',
        `the read-new flag is on but the new column is not verified (phase ${phase})`,
        'Reads stay on the old column until verify passes; they move by themselves then. Turn the flag off if it was turned on by mistake.',
      );
    }
    if (phase === 'read-new' && on(flags.contract) && !fullyOn(flags.readNew)) {
      return refuse(
        'contract',
        'contract',
        'contract-before-read-new-fully-on',
        'the contract flag is on but read-new is not fully rolled out',
        'Roll read-new out to 100% of requests (no constraints) and let every instance apply it; contract follows.',
      );
    }
    if (phase === 'read-new' && on(flags.contract) && !fullyOn(flags.contract)) {
      return refuse(
        'contract',
        'contract',
        'contract-not-fully-on',
        'the contract flag is on for part of the traffic only; contract is all or nothing',
        'Turn the contract flag on for every request (100%, no constraints) to confirm it.',
      );
    }
    if ((BEFORE_VERIFIED.includes(phase) || phase === 'verified') && on(flags.contract)) {
      return refuse(
        'contract',
        'contract',
        'contract-before-read-new',
        `the contract flag is on but the migration is ${phase}`,
        'Contract follows read-new; turn the flag off until reads have moved to the new column everywhere.',
      );
    }
    return undefined;
  }
}
