import type { Span } from '@opentelemetry/api';
import type { Logger } from '@phaseflag/core';
import type { InstanceStatus } from '../types.js';
import type { FlagObserver } from './flags.js';
import type { ControlledMigration, ControllerMigrationStatus } from './types.js';

/** What a controller keeps of one migration between passes. */
export interface Tracked {
  readonly handle: ControlledMigration;
  readonly flags: FlagObserver;
  leaderSpan: Span | undefined;
  runner: { abort: AbortController; done: Promise<void> } | undefined;
  pass: Promise<void> | undefined;
  again: boolean;
  /** Refusals recorded since the situation last changed: `${action}|${reason}`. */
  readonly refused: Set<string>;
  readonly staleReported: Set<string>;
  errorReported: string | null;
  runnerErrorReported: string | null;
  status: Omit<ControllerMigrationStatus, 'leader' | 'backfillRunning'>;
}

/** A migration the controller has not looked at yet: no leadership, no pass, nothing reported. */
export function track(handle: ControlledMigration, flags: FlagObserver): Tracked {
  return {
    handle,
    flags,
    leaderSpan: undefined,
    runner: undefined,
    pass: undefined,
    again: false,
    refused: new Set(),
    staleReported: new Set(),
    errorReported: null,
    runnerErrorReported: null,
    status: {
      migrationId: handle.id,
      phase: null,
      lastStep: null,
      drift: null,
      staleInstances: [],
      liveInstances: [],
      lastError: null,
      readsHeldSince: null,
    },
  };
}

/** Records the instances a pass saw in the status, and warns once of each that went stale (until it reports again). */
export function reportInstances(
  t: Tracked,
  instances: readonly InstanceStatus[],
  logger: Logger,
  instanceTtlMs: number,
): void {
  const stale = instances.filter((i) => !i.live);
  for (const i of stale) {
    if (t.staleReported.has(i.instanceId)) continue;
    t.staleReported.add(i.instanceId);
    logger.warn(
      `phaseflag: controller: ${t.handle.id}: instance ${i.instanceId} last reported at ${i.lastSeen.toISOString()}, older than the ${instanceTtlMs} ms TTL: ignored by the guards until it reports again`,
      { migrationId: t.handle.id, instanceId: i.instanceId, lastSeen: i.lastSeen, phase: i.phase },
    );
  }
  for (const idSeen of [...t.staleReported])
    if (!stale.some((i) => i.instanceId === idSeen)) t.staleReported.delete(idSeen);
  t.status = { ...t.status, staleInstances: stale, liveInstances: instances.filter((i) => i.live) };
}
