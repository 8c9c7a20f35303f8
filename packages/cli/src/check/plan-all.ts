import { formatQualifiedName, isPhaseflagError, type Migration } from '@phaseflag/core';
import type { LockMode, Phaseflag } from '@phaseflag/postgres';
import { strongerLock } from '@phaseflag/postgres/internal';

/** One declared migration planned against a database: what `phaseflag check` reports for it. */
export interface PlanCheck {
  id: string;
  table: string;
  /** Its phase in the state store, `null` when the store does not hold it (or is not installed). */
  phase: string | null;
  /** planned: every phase's SQL was built; refused: the declaration does not fit the database; skipped: contracted. */
  status: 'planned' | 'refused' | 'skipped';
  /** The strongest lock any phase takes, and how long application queries may wait behind phaseflag's DDL at most. */
  strongestLock?: string;
  maxBlockingLockWaitMs?: number;
  statements?: number;
  code?: string;
  message?: string;
  hint?: string | null;
}

/**
 * Plans every migration (read only: nothing is installed, registered or changed). A declaration the catalog
 * refuses (an unknown column, a type conflict, an expression that does not parse or is volatile, no key) is a
 * `refused` row with the engine's code and hint, not an exception: the check goes on with the others.
 */
export async function planAll(pf: Phaseflag, migrations: readonly Migration[]): Promise<PlanCheck[]> {
  const phases = await storedPhases(pf);
  const checks: PlanCheck[] = [];
  for (const m of migrations) {
    const base = { id: m.id, table: formatQualifiedName(m.table), phase: phases.get(m.id) ?? null };
    if (base.phase === 'contracted') {
      checks.push({ ...base, status: 'skipped', message: 'contracted: nothing left to plan' });
      continue;
    }
    try {
      const plan = await pf.migration(m).plan();
      const phasesPlanned = plan.phases;
      checks.push({
        ...base,
        table: `${plan.table.schema}.${plan.table.name}`,
        status: 'planned',
        strongestLock: phasesPlanned.reduce<LockMode>((a, p) => strongerLock(a, p.strongestLock), 'NONE'),
        maxBlockingLockWaitMs: Math.max(0, ...phasesPlanned.map((p) => p.maxBlockingLockWaitMs)),
        statements: phasesPlanned.reduce((n, p) => n + p.statements.length, 0),
      });
    } catch (error) {
      if (!isPhaseflagError(error)) throw error;
      checks.push({ ...base, status: 'refused', code: error.code, message: error.message, hint: error.hint ?? null });
    }
  }
  return checks;
}

async function storedPhases(pf: Phaseflag): Promise<Map<string, string>> {
  const info = await pf.stateStore();
  if (!info.installed) return new Map();
  try {
    return new Map((await pf.storedMigrations()).map((s) => [s.record.id, s.record.phase]));
  } catch (error) {
    // An older store than this code: the phases are unknown, every migration is planned.
    if (isPhaseflagError(error) && error.code === 'PF_STATE_SCHEMA_OUTDATED') return new Map();
    throw error;
  }
}
