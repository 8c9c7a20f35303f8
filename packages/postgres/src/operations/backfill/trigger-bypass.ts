import type { ResolvedMigration } from '../../catalog/resolved.js';
import type { Session } from '../../driver/session.js';
import { regclassText } from '../../sql/text.js';
import { syncTriggerName } from '../steps/sync-trigger.js';
import type { RunShared } from './run-shared.js';

/**
 * Whether the run's batches may skip the table's triggers (RunShared.triggerBypass): the migration has a sync
 * trigger, the caller did not opt out (`skipOwnTrigger`, default true) and the role may set
 * session_replication_role. Each batch still decides for itself whether the table's triggers allow it. The
 * trigger named is the sync trigger's UPDATE half; its INSERT half does not fire on the batch's UPDATE, and
 * triggerBypassSql looks only at triggers that do.
 */
export async function triggerBypassFor(
  lock: Session,
  r: ResolvedMigration,
  skipOwnTrigger: boolean | undefined,
): Promise<RunShared['triggerBypass']> {
  return (skipOwnTrigger ?? true) && r.migration.sync.trigger && (await maySetReplicationRole(lock))
    ? { table: regclassText(r.schema, r.table), ownTrigger: syncTriggerName(r), newColumn: r.migration.newColumn.name }
    : null;
}

/**
 * Whether this role may set session_replication_role (a superuser, or PG 15+ `GRANT SET ON PARAMETER
 * session_replication_role`): tried once, in a transaction of its own that changes nothing.
 */
async function maySetReplicationRole(session: Session): Promise<boolean> {
  try {
    await session.transaction(() => session.query('SET LOCAL session_replication_role = replica'), { readOnly: true });
    return true;
  } catch {
    return false;
  }
}
