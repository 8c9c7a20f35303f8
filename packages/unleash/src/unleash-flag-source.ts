import type { Attributes } from '@opentelemetry/api';
import {
  redactSecrets,
  type Clock,
  type FlagContext,
  type FlagSource,
  type FlagState,
  type Logger,
} from '@phaseflag/core';
import { Unleash, type Context } from 'unleash-client';
import { BackupFile } from './backup-file.js';
import { destroyClient } from './destroy-client.js';
import { buildEvaluationAttributes, type EvaluationFacts } from './evaluation-attributes.js';
import { definitionVersion, hasVariants, isFullyOn, isSplit, toFlagState, type FlagDefinition } from './flag-state.js';
import { Freshness, type FreshnessStatus } from './freshness.js';
import { resolveSourceOptions, type UnleashFlagSourceOptions } from './source-options.js';

type Listener = (flags: readonly string[]) => void;

const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's limit; a longer staleAfterMs re-arms on expiry

/**
 * A FlagSource over unleash-client. It answers from the client's in-memory data, so `isEnabled` costs what the
 * client's own `isEnabled` costs, and it says "unknown" (undefined) — never a guess — when the client has no data
 * yet, does not know the flag, or holds data older than `staleAfterMs`. The router then reads the old column.
 */
export class UnleashFlagSource implements FlagSource {
  readonly name = 'unleash';
  /** The client this source reads (yours, or the one it created). */
  readonly client: Unleash;
  readonly staleAfterMs: number;

  private readonly ownsClient: boolean;
  private readonly freshness: Freshness;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly backup: BackupFile | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly rejectionListeners = new Set<() => void>();
  private readonly secrets: string[]; // the token and URL password: never in a log line or a status
  private readonly detach: Array<() => void> = [];
  private readonly states = new WeakMap<FlagDefinition, FlagState>();
  /** Flag name → content version, as last seen: `changed` carries every flag, we report the ones that differ. */
  private versions = new Map<string, string>();
  private wasKnown = false;
  private staleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  // unleash-client calls the fallback only when it has no data yet or no such flag: both mean "unknown".
  private fellBack = false;
  private readonly fallback = (): boolean => {
    this.fellBack = true;
    return false;
  };

  constructor(options: UnleashFlagSourceOptions) {
    const o = resolveSourceOptions(options);
    this.clock = o.clock;
    this.logger = o.logger;
    this.staleAfterMs = o.staleAfterMs;
    this.backup = o.backupFile === undefined ? undefined : new BackupFile(o.backupFile, o.logger);
    this.freshness = new Freshness(o.staleAfterMs);
    this.secrets = o.secrets;
    this.ownsClient = o.client === undefined;
    // The client starts on the next tick (unless disableAutoStart), after the listeners below are attached.
    this.client = o.client ?? new Unleash(o.config!);
    this.listen('changed', (features: FlagDefinition[]) => this.onChanged(features));
    this.listen('unchanged', () => this.onUnchanged());
    this.listen('ready', () => void this.onReady());
    this.listen('error', (error: unknown) => this.onFailure(error instanceof Error ? error.message : String(error)));
    this.listen('warn', (message: unknown) => {
      // Backing off on 404/429/5xx and socket resets are failed polls; other warnings (an unknown strategy,
      // "not initialized yet") are not about reachability.
      if (typeof message === 'string' && /responded|Socket keep alive/i.test(message)) this.onFailure(message);
    });
  }

  isEnabled(flag: string, context?: FlagContext): boolean | undefined {
    if (!this.freshness.isKnown(this.clock.now())) return undefined;
    if (this.client.getFeatureToggleDefinition(flag) === undefined) return undefined;
    this.fellBack = false;
    // FlagContext's fields are Unleash's own context fields (userId, sessionId, remoteAddress, properties).
    const value = this.client.isEnabled(flag, context as Context | undefined, this.fallback);
    return this.fellBack ? undefined : value;
  }

  state(flag: string): FlagState | undefined {
    const definition = this.knownDefinition(flag);
    if (definition === undefined) return undefined;
    let state = this.states.get(definition);
    if (state === undefined) {
      state = toFlagState(definition);
      this.states.set(definition, state);
    }
    return state;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): FreshnessStatus {
    return this.freshness.status(this.clock.now());
  }

  /**
   * Resolves true once the source knows its flags; false after `timeoutMs` without, or at once when Unleash
   * refuses the token (`status().rejectedStatus`: the client stops polling, waiting would not help).
   */
  whenKnown(timeoutMs = 10_000): Promise<boolean> {
    const now = this.status();
    if (now.known || now.rejectedStatus !== undefined) return Promise.resolve(now.known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const unsubscribe = this.onChange(() => {
        if (this.status().known) done(true);
      });
      const rejected = () => done(false);
      const done = (known: boolean): void => {
        clearTimeout(timer);
        unsubscribe();
        this.rejectionListeners.delete(rejected);
        resolve(known);
      };
      this.rejectionListeners.add(rejected);
    });
  }

  /**
   * OpenTelemetry feature-flag attributes for one evaluation that returned `value`. Too costly for every request;
   * meant for the spans and events of transitions and refusals.
   */
  evaluationAttributes(flag: string, context: FlagContext | undefined, value: boolean | undefined): Attributes {
    const facts: EvaluationFacts = { provider: this.name };
    const status = this.status();
    const definition = status.known
      ? (this.client.getFeatureToggleDefinition(flag) as FlagDefinition | undefined)
      : undefined;
    if (definition !== undefined) {
      facts.version = definitionVersion(definition);
      if (definition.project !== undefined) facts.setId = definition.project;
    }
    if (value === undefined || definition === undefined) {
      if (status.knownAsOf === undefined) {
        facts.reason = 'error';
        facts.error = { type: 'provider_not_ready', message: 'no flag data yet (no fetch, bootstrap or backup)' };
      } else if (!status.known) {
        facts.reason = 'stale';
        facts.error = {
          message: `flag data last confirmed ${status.knownAsOf.toISOString()}, more than ${this.staleAfterMs} ms ago`,
        };
      } else {
        facts.reason = 'error';
        facts.error = {
          type: 'flag_not_found',
          message: `Unleash has no flag "${flag}" for this client's project and environment`,
        };
      }
      return buildEvaluationAttributes(flag, context, value, facts);
    }
    facts.reason = !definition.enabled
      ? 'disabled'
      : isFullyOn(definition)
        ? 'static'
        : isSplit(definition)
          ? 'split'
          : 'targeting_match';
    if (value && hasVariants(definition)) {
      const variant = this.client.getVariant(flag, context as Context | undefined);
      if (variant.enabled) facts.variant = variant.name;
    }
    return buildEvaluationAttributes(flag, context, value, facts);
  }

  /** Stops listening; destroys the client if this source created it. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.staleTimer);
    for (const off of this.detach.splice(0)) off();
    this.listeners.clear();
    this.rejectionListeners.clear();
    if (this.ownsClient) destroyClient(this.client);
  }

  private knownDefinition(flag: string): FlagDefinition | undefined {
    if (!this.freshness.isKnown(this.clock.now())) return undefined;
    return this.client.getFeatureToggleDefinition(flag);
  }

  private onChanged(features: FlagDefinition[]): void {
    const now = this.clock.now();
    // unleash-client emits `changed` for its bootstrap too; its repository says whether it has reached Unleash.
    const repository = (this.client as unknown as { repository?: { connected?: boolean } }).repository;
    if (repository?.connected === false) this.freshness.loaded('bootstrap', now);
    else this.succeeded(now);
    this.afterUpdate(this.diff(features));
  }

  private onUnchanged(): void {
    const now = this.clock.now();
    this.succeeded(now);
    void this.backup?.confirmed(now);
    this.afterUpdate([]);
  }

  /**
   * `ready` without a `changed` before it: the client loaded its backup file. That data is as current as the
   * file's mtime (see BackupFile), and unknown when we cannot tell which file it was.
   */
  private async onReady(): Promise<void> {
    if (this.freshness.status(this.clock.now()).knownAsOf !== undefined) return;
    if (this.backup === undefined) {
      this.logger.info(
        'phaseflag: unleash-client loaded a backup we cannot date (pass backupFile); flags stay unknown until Unleash answers',
        {},
      );
      return;
    }
    const confirmedAt = await this.backup.confirmedAt();
    if (confirmedAt === undefined || this.closed) return;
    this.freshness.loaded('backup', confirmedAt);
    this.afterUpdate(this.diff(this.client.getFeatureToggleDefinitions()));
  }

  private succeeded(now: number): void {
    const wasDown = this.freshness.status(now).unreachableSince;
    this.freshness.synced(now);
    if (wasDown !== undefined)
      this.logger.warn('phaseflag: Unleash answers again', { unreachableSince: wasDown.toISOString() });
  }

  private onFailure(raw: string): void {
    const now = this.clock.now();
    // unleash-client's messages carry the URL it polled; a body or header may carry the token.
    const message = redactSecrets(raw, { secrets: this.secrets, maxLength: 500 });
    const first = this.freshness.failed(now, message);
    const rejected = this.freshness.status(now).rejectedStatus;
    if (rejected !== undefined) {
      const what = `refused the client token (${rejected}); unleash-client stops polling, flags stay unknown`;
      this.logger.error(`phaseflag: Unleash ${what} (old column)`, { error: message });
      for (const listener of [...this.rejectionListeners]) listener();
      return;
    }
    if (!first) return; // log once per outage, not on every poll
    const staleAt = this.freshness.staleAt();
    this.logger.warn(
      'phaseflag: Unleash unreachable; flags keep their last known values until they turn stale, then read as unknown (old column)',
      {
        error: message,
        staleAt: staleAt === undefined ? null : new Date(staleAt).toISOString(),
      },
    );
    this.afterUpdate([]);
  }

  private diff(features: readonly FlagDefinition[]): string[] {
    const next = new Map(features.map((f) => [f.name, definitionVersion(f)]));
    const changed: string[] = [];
    for (const [name, version] of next) if (this.versions.get(name) !== version) changed.push(name);
    for (const name of this.versions.keys()) if (!next.has(name)) changed.push(name);
    this.versions = next;
    return changed;
  }

  /** Re-arms the stale timer and tells listeners what changed (every flag, when known flips). */
  private afterUpdate(changed: readonly string[]): void {
    if (this.closed) return;
    const now = this.clock.now();
    const known = this.freshness.isKnown(now);
    clearTimeout(this.staleTimer);
    const staleAt = this.freshness.staleAt();
    if (known && staleAt !== undefined) {
      this.staleTimer = setTimeout(() => this.afterUpdate([]), Math.min(staleAt - now + 1, MAX_TIMER_MS));
      this.staleTimer.unref();
    }
    let names = changed;
    if (known !== this.wasKnown) {
      this.wasKnown = known;
      names = [...new Set([...this.versions.keys(), ...changed])];
    }
    if (names.length > 0) this.emit(names);
  }

  private emit(names: readonly string[]): void {
    for (const listener of this.listeners) {
      try {
        listener(names);
      } catch (error) {
        this.logger.error('phaseflag: a flag change listener threw', { error: (error as Error).message, flags: names });
      }
    }
  }

  private listen(event: string, handler: (...args: never[]) => void): void {
    const h = handler as (...args: unknown[]) => void;
    this.client.on(event, h);
    this.detach.push(() => this.client.off(event, h));
  }
}
