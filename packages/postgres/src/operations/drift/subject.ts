import type { Migration, Phase } from '@phaseflag/core';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import type { PhaseExpectations } from './expectations.js';
import type { DriftObject, DriftRepair } from './types.js';

/** What the checks compare: the declaration, where its table is, what its phase implies, and what resolved. */
export interface DriftSubject {
  readonly migration: Migration;
  readonly phase: Phase;
  readonly schema: string;
  readonly table: string;
  readonly stateSchema: string;
  readonly expect: PhaseExpectations;
  /** The declared type as Postgres spells it; null when the type itself does not resolve. */
  readonly newColumnType: string | null;
  /** The declaration resolved against the catalog; null when it does not (the findings say why). */
  readonly resolved: ResolvedMigration | null;
  /** The migration created its new column (so a NOT NULL on it before contract is not the user's own). */
  readonly createdNewColumn: boolean;
}

/** Records one finding. */
export type Add = (
  object: DriftObject,
  name: string,
  expected: string,
  actual: string,
  fix: Partial<DriftRepair>,
) => void;
