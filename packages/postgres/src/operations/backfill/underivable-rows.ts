import { BackfillRowFailedError } from '@phaseflag/core';
import type { ResolvedMigration } from '../../catalog/resolved.js';
import {
  evaluateKeySql,
  isRowLevelError,
  rowAfterSql,
  walkBisecting,
  type FailedRow,
  type RowAfterRow,
} from '../underivable/bisect.js';
import { recordedKeys, recordUnderivable } from '../underivable/store.js';
import type { Session } from '../../driver/session.js';
import type { StoredRange } from './state.js';
import type { RunShared } from './run-shared.js';

/**
 * A batch's UPDATE failed on a row's value. Finds the row(s) among the batch's `size` keys after `from` by
 * halving read-only evaluations of the expression (the batch itself was rolled back with its checkpoint), then:
 *
 * - rows the preflight recorded (accepted by the user) or the sync trigger recorded (an application write the
 *   trigger could not derive) are known: the batch is run again leaving them alone (their new column stays NULL;
 *   they stay recorded and keep blocking verified) — the returned keys;
 * - any other row, e.g. one written while the trigger was off, is recorded (source 'backfill') and stops the run
 *   with PF_BACKFILL_ROW_FAILED naming its key, old value and error. So does a row the backfill stopped on before:
 *   a rerun resumes only once the row is fixed (or the expression changed).
 *
 * Returns null when no single row fails alone (the batch failed for another reason): the caller reports the
 * original error.
 */
export async function locateUnderivable(
  shared: RunShared,
  session: Session,
  r: ResolvedMigration,
  range: StoredRange,
  from: string | null,
  size: number,
): Promise<string[] | null> {
  const failed: FailedRow[] = [];
  const readOnly = { readOnly: true, searchPath: shared.searchPath };
  const rowAfter = rowAfterSql(r, true);
  const evaluateKey = evaluateKeySql(r, r.migration.backfill!);
  await walkBisecting(
    {
      chunk: async (after, limit) => {
        const row = (await session.transaction(
          () =>
            session.one<{ scanned: number; last_key: string | null }>(shared.statements.evaluate, [
              after,
              range.upperText,
              limit,
            ]),
          readOnly,
        ))!;
        return { scanned: row.scanned, lastKey: row.last_key };
      },
      rowAfter: async (after) => {
        const x = await session.transaction(
          () => session.one<RowAfterRow>(rowAfter, [after, range.upperText]),
          readOnly,
        );
        return x && { keyText: x.key_text, key: x.key, oldValue: x.old_value };
      },
      evaluateRow: async (keyText) => {
        await session.transaction(() => session.query(evaluateKey, [keyText]), readOnly);
      },
      onFailure: (row) => {
        failed.push(row);
      },
    },
    from,
    size,
  );
  if (failed.length === 0) return null;
  const known = await recordedKeys(shared.ctx, shared.migrationId);
  const unknown = failed.filter((f) => {
    const source = known.get(f.keyText);
    return source === undefined || source === 'backfill';
  });
  if (unknown.length === 0) return failed.map((f) => f.keyText);
  await recordUnderivable(shared.ctx, shared.migrationId, unknown, 'backfill');
  const first = unknown[0]!;
  throw new BackfillRowFailedError(
    `The backfill of "${shared.migrationId}" cannot derive the row with key ${JSON.stringify(first.key)}: ` +
      `${r.oldColumn?.name ?? 'the old column'} = ${JSON.stringify(first.oldValue)}: ${first.error}` +
      `${unknown.length > 1 ? ` (and ${unknown.length - 1} more row(s) in the same batch)` : ''}.`,
    {
      value: {
        key: first.key,
        oldValue: first.oldValue,
        error: first.error,
        sqlstate: first.sqlstate,
        rows: unknown.map((u) => ({ key: u.key, oldValue: u.oldValue, error: u.error })),
      },
      migrationId: shared.migrationId,
      hint: 'Fix the row (give the old column a value the expression maps) or change the expression, then run the backfill again: it resumes after the last committed batch. The row is listed by `phaseflag status`.',
    },
  );
}

export { isRowLevelError };
