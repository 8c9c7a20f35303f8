import type { PhaseSnapshot, RouterStore } from '@phaseflag/core';

/**
 * A router's view of the state store whose phase changes arrive only when the test delivers them: a service
 * instance that has not heard the latest NOTIFY yet, lagging by as many phases as the interleaving says. Reads of
 * the phase, heartbeats and removals go to the real store; nothing about the database is faked.
 */
export class GatedStore implements RouterStore {
  private listeners = new Map<string, Set<(s: PhaseSnapshot) => void>>();

  constructor(private readonly real: RouterStore) {}

  readPhase(migrationId: string): Promise<PhaseSnapshot> {
    return this.real.readPhase(migrationId);
  }

  watchPhase(migrationId: string, listener: (snapshot: PhaseSnapshot) => void): () => void {
    const set = this.listeners.get(migrationId) ?? new Set();
    set.add(listener);
    this.listeners.set(migrationId, set);
    return () => set.delete(listener);
  }

  /** Hands the phase the store records now to every router watching `migrationId` (the NOTIFY arriving). */
  async deliver(migrationId: string): Promise<void> {
    const snapshot = await this.real.readPhase(migrationId);
    for (const listener of this.listeners.get(migrationId) ?? []) listener(snapshot);
  }

  heartbeat(report: Parameters<RouterStore['heartbeat']>[0]): Promise<void> {
    return this.real.heartbeat(report);
  }

  removeInstance(instanceId: string, migrationId: string): Promise<void> {
    return this.real.removeInstance(instanceId, migrationId);
  }
}
