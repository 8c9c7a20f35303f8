import { shadowRefusal, type ShadowFacts } from './shadow.js';

/**
 * The phase state machine. Transitions are named actions; each has the phases it may start from, the phase it
 * leads to and a guard over facts read from the database (never over flags: flags are intent, facts are truth).
 */
export const PHASES = [
  'pending',
  'expanded',
  'dual-write',
  'backfilling',
  'paused',
  'backfilled',
  'verified',
  'read-new',
  'contracted',
  'rolled-back',
] as const;
export type Phase = (typeof PHASES)[number];

export function isPhase(value: unknown): value is Phase {
  return typeof value === 'string' && (PHASES as readonly string[]).includes(value);
}

export const ACTIONS = [
  'expand',
  'dual-write',
  'stop-dual-write',
  'backfill',
  'pause',
  'resume',
  'complete-backfill',
  'verify',
  'repair',
  'read-new',
  'read-old',
  'contract',
  'rollback',
] as const;
export type Action = (typeof ACTIONS)[number];

/** What the executor knows from the database when a transition is asked for. */
export interface GuardFacts {
  readonly phase: Phase;
  /** The new column exists with the declared type. */
  readonly newColumnReady: boolean;
  /** The sync trigger is installed and enabled (writers that do not embed phaseflag are covered). */
  readonly triggerInstalled: boolean;
  /**
   * The migration has nothing for a trigger or a writer to keep in sync: a brand-new column with no backfill and
   * no reverse expression (writers that leave it out get its default). Absent: false.
   */
  readonly nothingToSync?: boolean;
  /** Live service instances and what they apply; empty when none reported (or none is live). */
  readonly liveInstances: readonly InstanceFact[];
  /** Every backfill range reached its upper bound. */
  readonly backfillComplete: boolean;
  /** The last verify: clean means zero mismatches over every row, after the backfill completed. */
  readonly verify: { readonly clean: boolean; readonly mismatches: number; readonly afterBackfill: boolean } | null;
  /** The caller confirmed an irreversible step. */
  readonly confirmed: boolean;
  /** Other in-flight migrations touching the same columns (ids). */
  readonly conflicts: readonly string[];
  /**
   * Rows recorded as not derivable by the backfill expression (the sync trigger, preflight, backfill or verify
   * met an error on their value), and the first one's key: they block verified and read-new. Absent: none known.
   */
  readonly underivable?: {
    readonly count: number;
    readonly firstKey: readonly unknown[] | null;
    /** Of them, rows the backfill stopped on (nobody had recorded them before): a flag does not resume it. */
    readonly stoppedBackfill?: number;
  };
  /** Shadow reads of the current `verified`, when the migration declares shadow (read-new then needs them). */
  readonly shadow?: ShadowFacts;
}

export interface InstanceFact {
  readonly instanceId: string;
  readonly phase: Phase | 'unknown';
  readonly writesOld: boolean;
  readonly writesNew: boolean;
  /** The instance may read the old column for some requests. */
  readsOld: boolean;
}

export type GuardResult =
  { readonly allowed: true } | { readonly allowed: false; readonly reason: string; readonly hint: string };

export interface TransitionRule {
  readonly action: Action;
  readonly from: readonly Phase[];
  readonly to: Phase;
  readonly guard: (facts: GuardFacts) => GuardResult;
}

const ALLOW: GuardResult = Object.freeze({ allowed: true });
const refuse = (reason: string, hint: string): GuardResult => ({ allowed: false, reason, hint });

/** The refusal while rows the expression cannot derive are recorded (null when there are none). */
function underivableRefusal(f: GuardFacts): GuardResult | null {
  const u = f.underivable;
  if (u === undefined || u.count === 0) return null;
  return refuse(
    `${u.count} row(s) cannot be derived by the backfill expression (first key ${JSON.stringify(u.firstKey)}); their new column is NULL`,
    'Fix those rows (give the old column a value the expression maps) or change the expression, then run verify again; `phaseflag status` lists them.',
  );
}

const ROLLBACK_FROM: readonly Phase[] = [
  'expanded',
  'dual-write',
  'backfilling',
  'paused',
  'backfilled',
  'verified',
  'read-new',
];

export const TRANSITIONS: readonly TransitionRule[] = [
  {
    action: 'expand',
    from: ['pending', 'rolled-back'],
    to: 'expanded',
    guard: (f) =>
      f.conflicts.length > 0
        ? refuse(
            `another migration in flight touches the same column: ${f.conflicts.join(', ')}`,
            'Finish or roll back that migration first, or change a different column.',
          )
        : ALLOW,
  },
  {
    action: 'dual-write',
    from: ['expanded'],
    to: 'dual-write',
    guard: (f) => (f.newColumnReady ? ALLOW : refuse('the new column does not exist yet', 'Run expand first.')),
  },
  {
    action: 'stop-dual-write',
    from: ['dual-write'],
    to: 'expanded',
    guard: () => ALLOW,
  },
  {
    action: 'backfill',
    from: ['dual-write'],
    to: 'backfilling',
    guard: (f) => {
      if (f.triggerInstalled || f.nothingToSync === true) return ALLOW;
      const lagging = f.liveInstances.filter((i) => !(i.writesOld && i.writesNew));
      if (f.liveInstances.length === 0) {
        return refuse(
          'the sync trigger is off and no live service instance reports writing both columns',
          'Turn the sync trigger on, or start the services with dual-write on so they report it, then start the backfill.',
        );
      }
      return lagging.length === 0
        ? ALLOW
        : refuse(
            `live instances do not write both columns yet: ${lagging.map((i) => i.instanceId).join(', ')}`,
            'Wait until every instance has picked up dual-write (or its heartbeat expires), or turn the sync trigger on.',
          );
    },
  },
  { action: 'pause', from: ['backfilling'], to: 'paused', guard: () => ALLOW },
  { action: 'resume', from: ['paused'], to: 'backfilling', guard: () => ALLOW },
  {
    action: 'complete-backfill',
    from: ['backfilling'],
    to: 'backfilled',
    guard: (f) =>
      f.backfillComplete
        ? ALLOW
        : refuse('backfill ranges have rows left', 'Let the backfill run to the end of its key range.'),
  },
  {
    action: 'verify',
    from: ['backfilled'],
    to: 'verified',
    guard: (f) => {
      if (!f.backfillComplete)
        return refuse('the backfill has not completed', 'Run the backfill to completion, then verify.');
      if (f.verify === null || !f.verify.afterBackfill)
        return refuse('no verify run since the backfill completed', 'Run verify.');
      const underivable = underivableRefusal(f);
      if (underivable) return underivable;
      return f.verify.clean
        ? ALLOW
        : refuse(
            `verify found ${f.verify.mismatches} row(s) whose new column differs from the backfill expression`,
            'Inspect the reported keys and fix the cause (a writer bypassing dual-write?), then re-derive those rows with repair (`phaseflag repair <id>`, `repair()`), which verifies again.',
          );
    },
  },
  {
    // Back to backfilling over fresh ranges: the batches rewrite only rows whose new column differs from the
    // expression, so a repair re-derives exactly the rows a failed verify found (and any that went wrong since).
    action: 'repair',
    from: ['backfilled', 'verified'],
    to: 'backfilling',
    guard: (f) => {
      // From verified: shadow reads found rows that differ after the clean verify (written behind dual-write since).
      if (f.phase === 'verified')
        return (f.shadow?.mismatched ?? 0) > 0
          ? ALLOW
          : refuse(
              'repair follows a failed verify (backfilled) or a shadow mismatch; verify was clean and no shadow read differed',
              'Nothing to repair.',
            );
      if (f.verify === null)
        return refuse(
          'no verify has run since the backfill completed',
          'Run verify first: repair re-derives the rows a failed verify found.',
        );
      return f.verify.clean
        ? refuse(
            'the last verify was clean: there is nothing to repair',
            'Run verify again if rows changed since; it moves the phase to verified when clean.',
          )
        : ALLOW;
    },
  },
  {
    action: 'read-new',
    from: ['verified'],
    to: 'read-new',
    guard: (f) =>
      f.verify?.clean
        ? (underivableRefusal(f) ?? shadowRefusal(f.shadow) ?? ALLOW)
        : refuse('the new column has not been verified', 'Reads switch only after a clean verify.'),
  },
  { action: 'read-old', from: ['read-new'], to: 'verified', guard: () => ALLOW },
  {
    action: 'contract',
    from: ['read-new'],
    to: 'contracted',
    guard: (f) => {
      if (!f.confirmed)
        return refuse(
          'contract is irreversible and was not confirmed',
          'Pass confirm: true (CLI: --confirm) once reads have moved to the new column everywhere.',
        );
      const readers = f.liveInstances.filter((i) => i.readsOld);
      return readers.length === 0
        ? ALLOW
        : refuse(
            `live instances still read the old column: ${readers.map((i) => i.instanceId).join(', ')}`,
            'Roll read-new out to 100% and wait until every instance applies it (or its heartbeat expires).',
          );
    },
  },
  { action: 'rollback', from: ROLLBACK_FROM, to: 'rolled-back', guard: () => ALLOW },
];

const RULES = new Map<Action, TransitionRule>(TRANSITIONS.map((t) => [t.action, t]));

export function ruleFor(action: Action): TransitionRule {
  const rule = RULES.get(action);
  if (!rule) throw new Error(`unknown action ${action}`);
  return rule;
}

export type TransitionDecision =
  | { readonly allowed: true; readonly action: Action; readonly from: Phase; readonly to: Phase }
  | {
      readonly allowed: false;
      readonly action: Action;
      readonly from: Phase;
      readonly to: Phase;
      readonly reason: string;
      readonly hint: string;
    };

/** Decides a transition from facts alone. Pure: the executor records and applies the result. */
export function decideTransition(action: Action, facts: GuardFacts): TransitionDecision {
  const rule = ruleFor(action);
  if (!rule.from.includes(facts.phase)) {
    const reason =
      facts.phase === 'contracted'
        ? 'the migration is contracted, which is final'
        : `"${action}" applies from ${rule.from.join(' or ')}, not from ${facts.phase}`;
    const hint =
      facts.phase === 'contracted'
        ? 'Declare a new migration to change the column again.'
        : `Bring the migration to ${rule.from.join(' or ')} first.`;
    return { allowed: false, action, from: facts.phase, to: rule.to, reason, hint };
  }
  const result = rule.guard(facts);
  return result.allowed
    ? { allowed: true, action, from: facts.phase, to: rule.to }
    : { allowed: false, action, from: facts.phase, to: rule.to, reason: result.reason, hint: result.hint };
}
