import { PHASE_FLAGS, type Migration, type PhaseFlag } from '@phaseflag/core';

/** A phase flag, or the shadow-reads flag of a migration that declares `shadow`. */
export type ProvisionedRole = PhaseFlag | 'shadow';

/**
 * What each flag does and which guard protects it, in the words an operator reads in the Unleash UI. The order
 * of phases lives in phaseflag's guards (Unleash's feature dependencies are one level deep and a paid feature),
 * so each description says what the guard waits for.
 */
export function describeFlag(migration: Migration, role: ProvisionedRole): string {
  const table =
    migration.table.schema && migration.table.schema !== 'public'
      ? `${migration.table.schema}.${migration.table.name}`
      : migration.table.name;
  const neu = `${table}.${migration.newColumn.name}`;
  const old = migration.oldColumn === null ? null : `${table}.${migration.oldColumn}`;
  if (role === 'shadow') {
    const s = migration.shadow!;
    return (
      `phaseflag migration "${migration.id}", shadow reads (between verified and read-new). On: while verified, services answer from ${old} and compare ${neu} with the backfill expression in SQL, on ${s.sampleRatio * 100}% of reads; nothing they return changes. ` +
      `Guard: read-new waits for ${s.minCompared} compared rows with ${s.minMatchRate * 100}% matching; a mismatch refuses it, naming the row.`
    );
  }
  const head = `phaseflag migration "${migration.id}", step ${PHASE_FLAGS.indexOf(role) + 1} of ${PHASE_FLAGS.length}.`;
  switch (role) {
    case 'dualWrite':
      return (
        `${head} On: phaseflag adds ${neu} online (expand), then services write ${old ? `both ${old} and ${neu}` : neu}${migration.sync.trigger ? ', and a sync trigger covers other writers' : ''}. ` +
        `Guard: writes change only once ${neu} exists; turning it off while any reads use ${neu} is refused.`
      );
    case 'backfill':
      return (
        `${head} On: phaseflag fills ${neu} for existing rows in short, resumable batches; off: pauses after the current batch. ` +
        `Guard: starts only when ${migration.sync.trigger ? 'the sync trigger is installed' : 'every live service instance writes both columns'}; reads move only after a clean verify.`
      );
    case 'readNew':
      return (
        `${head} Reads ${old ? `of ${old} move to ${neu}` : `start using ${neu}`} for the users in this rollout. ` +
        'Guard: only after phaseflag verified every row; turning it on earlier is refused. Turning it off moves reads back at once.'
      );
    case 'contract': {
      const steps = [
        ...(migration.sync.trigger ? ['drops the sync trigger'] : []),
        ...(migration.newColumn.nullable ? [] : [`enforces NOT NULL on ${neu}`]),
        ...(old ? [`drops ${old} if asked`] : []),
      ];
      const what =
        steps.length === 0
          ? 'ends the migration'
          : steps.length === 1
            ? steps[0]
            : `${steps.slice(0, -1).join(', ')} and ${steps[steps.length - 1]}`;
      return (
        `${head} On: phaseflag contracts: ${what}. Irreversible. ` +
        `Guard: only when read-new is on for everyone and ${old ? `no live service instance still reads ${old}` : 'every live service instance applies it'}; it also needs confirmation.`
      );
    }
  }
}

/**
 * The tag that groups a migration's flags in the UI: type `simple`, value the migration id. Unleash accepts tag
 * values of 2 to 50 characters; ids are 1 to 63, so the rare id outside that range is padded or shortened.
 */
export function migrationTag(migration: Migration): { type: string; value: string } {
  const id = migration.id;
  if (id.length >= 2 && id.length <= 50) return { type: 'simple', value: id };
  if (id.length < 2) return { type: 'simple', value: `migration-${id}` };
  let hash = 0;
  for (const ch of id) hash = (Math.imul(hash, 31) + ch.charCodeAt(0)) >>> 0;
  const tail = hash.toString(36);
  return { type: 'simple', value: `${id.slice(0, 49 - tail.length)}-${tail}` };
}
