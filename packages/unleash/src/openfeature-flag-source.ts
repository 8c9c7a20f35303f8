import type { Attributes } from '@opentelemetry/api';
import type {
  Client,
  EvaluationContext,
  EvaluationDetails,
  EventDetails,
  ProviderEvents,
} from '@openfeature/server-sdk';
import {
  ValidationError,
  systemClock,
  type Clock,
  type FlagContext,
  type FlagSource,
  type Logger,
  silentLogger,
} from '@phaseflag/core';
import { z } from 'zod';
import {
  buildEvaluationAttributes,
  type EvaluationErrorType,
  type EvaluationFacts,
  type EvaluationReason,
} from './evaluation-attributes.js';

// Event names as strings: the adapter must not load @openfeature/server-sdk (an optional peer) at import time.
const READY = 'PROVIDER_READY' as ProviderEvents.Ready;
const ERROR = 'PROVIDER_ERROR' as ProviderEvents.Error;
const STALE = 'PROVIDER_STALE' as ProviderEvents.Stale;
const CHANGED = 'PROVIDER_CONFIGURATION_CHANGED' as ProviderEvents.ConfigurationChanged;

const optionsSchema = z.strictObject({
  /** An OpenFeature server client: `OpenFeature.getClient()`. */
  client: z.custom<Client>(
    (v) => typeof (v as Client)?.getBooleanDetails === 'function' && typeof (v as Client)?.addHandler === 'function',
    'an OpenFeature Client',
  ),
  /** A cached answer older than this is re-evaluated in the background (still served meanwhile). Default 1 000 ms. */
  refreshAfterMs: z.number().int().min(0).default(1000),
  /** A cached answer older than this is never served: unknown instead. Default 30 000 ms. */
  maxAgeMs: z.number().int().min(1).default(30_000),
  /** Answers kept (one per flag and context); the least recently evaluated go first. Default 10 000. */
  maxEntries: z.number().int().min(1).default(10_000),
  clock: z.custom<Clock>((v) => typeof (v as Clock)?.now === 'function', 'a Clock').default(systemClock),
  logger: z.custom<Logger>((v) => typeof (v as Logger)?.warn === 'function', 'a Logger').default(silentLogger),
});

export type OpenFeatureFlagSourceOptions = z.input<typeof optionsSchema>;

interface Answer {
  value: boolean | undefined;
  details: EvaluationDetails<boolean> | undefined;
  at: number;
}

type Listener = (flags: readonly string[]) => void;

/**
 * A FlagSource over an OpenFeature server client, for teams whose flags live in another service. OpenFeature's
 * server evaluation is asynchronous and the router decides synchronously, so `isEnabled` answers from the last
 * evaluation for the same flag and context and refreshes it in the background: the first request of a context
 * reads unknown (the old column), later ones follow the flag. `evaluate()` is the exact, awaited answer.
 * A configuration change drops the affected answers at once, so turning a flag off is never served stale.
 */
export class OpenFeatureFlagSource implements FlagSource {
  private readonly client: Client;
  private readonly refreshAfterMs: number;
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly answers = new Map<string, Answer>();
  private readonly pending = new Set<string>();
  private readonly asked = new Set<string>();
  private readonly listeners = new Set<Listener>();
  private readonly handlers: Array<[ProviderEvents, (details?: EventDetails) => void]> = [];
  /** Bumped by every invalidation: an evaluation started before it must not store its answer. */
  private generation = 0;
  private failing = false;

  constructor(options: OpenFeatureFlagSourceOptions) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new ValidationError(
        'PF_INVALID_OPTIONS',
        `Invalid OpenFeatureFlagSource options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}.`,
        {
          value: options,
          hint: 'Pass { client: OpenFeature.getClient() }, after OpenFeature.setProvider(...).',
        },
      );
    }
    this.client = parsed.data.client;
    this.refreshAfterMs = parsed.data.refreshAfterMs;
    this.maxAgeMs = parsed.data.maxAgeMs;
    this.maxEntries = parsed.data.maxEntries;
    this.clock = parsed.data.clock;
    this.logger = parsed.data.logger;
    this.handle(CHANGED, (details) => {
      const flags = (details as { flagsChanged?: string[] } | undefined)?.flagsChanged;
      this.invalidate(flags && flags.length > 0 ? flags : undefined);
    });
    this.handle(ERROR, () => this.invalidate(undefined));
    this.handle(STALE, () => this.invalidate(undefined));
    // Answers cached while the provider was not ready (unknown) or failing are dropped when it becomes ready.
    this.handle(READY, () => this.invalidate(undefined));
  }

  /** The provider's name (`feature_flag.provider.name`). */
  get name(): string {
    return this.client.metadata.providerMetadata?.name ?? 'openfeature';
  }

  isEnabled(flag: string, context?: FlagContext): boolean | undefined {
    const key = cacheKey(flag, context);
    const answer = this.answers.get(key);
    const now = this.clock.now();
    if (answer === undefined || now - answer.at > this.refreshAfterMs) this.refresh(key, flag, context);
    return answer !== undefined && now - answer.at <= this.maxAgeMs ? answer.value : undefined;
  }

  /** The exact answer, from the provider now. undefined on any error, a provider not ready, or a stale value. */
  async evaluate(flag: string, context?: FlagContext): Promise<boolean | undefined> {
    const generation = this.generation;
    this.asked.add(flag);
    const details = await this.details(flag, context);
    if (generation === this.generation) this.store(cacheKey(flag, context), details);
    return interpret(details);
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Feature-flag attributes from the last evaluation for this flag and context. */
  evaluationAttributes(flag: string, context: FlagContext | undefined, value: boolean | undefined): Attributes {
    const details = this.answers.get(cacheKey(flag, context))?.details;
    const facts: EvaluationFacts = { provider: this.name };
    if (details === undefined) {
      facts.reason = 'unknown';
      return buildEvaluationAttributes(flag, context, value, facts);
    }
    if (details.reason !== undefined) facts.reason = details.reason.toLowerCase() as EvaluationReason;
    if (details.variant !== undefined) facts.variant = details.variant;
    const { version, flagSetId } = details.flagMetadata ?? {};
    if (version !== undefined) facts.version = String(version);
    if (flagSetId !== undefined) facts.setId = String(flagSetId);
    if (details.errorCode !== undefined) {
      facts.error = { type: errorType(details.errorCode), message: details.errorMessage ?? details.errorCode };
    }
    return buildEvaluationAttributes(flag, context, value, facts);
  }

  close(): void {
    for (const [event, handler] of this.handlers.splice(0)) this.client.removeHandler(event, handler);
    this.listeners.clear();
    this.answers.clear();
  }

  private refresh(key: string, flag: string, context: FlagContext | undefined): void {
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.asked.add(flag);
    const generation = this.generation;
    void this.details(flag, context).then((details) => {
      this.pending.delete(key);
      if (generation === this.generation) this.store(key, details);
    });
  }

  private async details(
    flag: string,
    context: FlagContext | undefined,
  ): Promise<EvaluationDetails<boolean> | undefined> {
    try {
      const details = await this.client.getBooleanDetails(flag, false, toEvaluationContext(context));
      this.failing = false;
      return details;
    } catch (error) {
      // The SDK reports provider errors in the details; a throw here is a hook or the SDK itself failing.
      if (!this.failing)
        this.logger.warn('phaseflag: OpenFeature evaluation threw; treating flags as unknown', {
          flag,
          error: (error as Error).message,
        });
      this.failing = true;
      return undefined;
    }
  }

  private store(key: string, details: EvaluationDetails<boolean> | undefined): void {
    this.answers.delete(key); // re-insert at the end: Map order is our recency order
    this.answers.set(key, { value: interpret(details), details, at: this.clock.now() });
    while (this.answers.size > this.maxEntries) this.answers.delete(this.answers.keys().next().value as string);
  }

  private invalidate(flags: readonly string[] | undefined): void {
    this.generation++;
    this.pending.clear();
    if (flags === undefined) this.answers.clear();
    else for (const key of [...this.answers.keys()]) if (flags.includes(flagOfKey(key))) this.answers.delete(key);
    this.emit(flags ?? [...this.asked]);
  }

  private emit(flags: readonly string[]): void {
    if (flags.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(flags);
      } catch (error) {
        this.logger.error('phaseflag: a flag change listener threw', { error: (error as Error).message, flags });
      }
    }
  }

  private handle(event: ProviderEvents, handler: (details?: EventDetails) => void): void {
    this.client.addHandler(event, handler);
    this.handlers.push([event, handler]);
  }
}

/** undefined unless the provider answered a boolean without error and not stale. A disabled flag is off. */
function interpret(details: EvaluationDetails<boolean> | undefined): boolean | undefined {
  if (details === undefined || details.errorCode !== undefined) return undefined;
  if (details.reason === 'ERROR' || details.reason === 'STALE') return undefined;
  return typeof details.value === 'boolean' ? details.value : undefined;
}

/** OpenFeature's context: targetingKey is the stickiness id (user, else session); the rest travel as attributes. */
export function toEvaluationContext(context: FlagContext | undefined): EvaluationContext {
  if (context === undefined) return {};
  const targetingKey = context.userId ?? context.sessionId;
  return {
    ...context.properties,
    ...(targetingKey === undefined ? {} : { targetingKey }),
    ...(context.userId === undefined ? {} : { userId: context.userId }),
    ...(context.sessionId === undefined ? {} : { sessionId: context.sessionId }),
    ...(context.remoteAddress === undefined ? {} : { remoteAddress: context.remoteAddress }),
  };
}

function cacheKey(flag: string, context: FlagContext | undefined): string {
  if (context === undefined) return flag;
  return `${flag}\u0000${JSON.stringify([context.userId, context.sessionId, context.remoteAddress, context.properties])}`;
}

function flagOfKey(key: string): string {
  const end = key.indexOf('\u0000');
  return end === -1 ? key : key.slice(0, end);
}

function errorType(code: string): EvaluationErrorType {
  const known: Record<string, EvaluationErrorType> = {
    FLAG_NOT_FOUND: 'flag_not_found',
    PROVIDER_NOT_READY: 'provider_not_ready',
    PROVIDER_FATAL: 'provider_fatal',
    TYPE_MISMATCH: 'type_mismatch',
    INVALID_CONTEXT: 'invalid_context',
    TARGETING_KEY_MISSING: 'invalid_context',
  };
  return known[code] ?? 'general';
}
