import type { Action, ControllerRefusalCode, Logger, Phase } from '@phaseflag/core';

/**
 * What a controller tells the application as it happens, through `ControllerOptions.onEvent`: the refusals it
 * records, the transitions it applies itself and its leadership changes. The same facts go to the event log, to
 * spans and to the logger; this hook is for code that reacts (a status page, a chat message, a demo's timeline)
 * without reading log lines.
 */
export type ControllerEvent = ControllerRefusalEvent | ControllerTransitionEvent | ControllerLeaderEvent;

/** A step a flag asks for and the controller declines, reported once until the situation changes (as recorded). */
export interface ControllerRefusalEvent {
  readonly kind: 'refused';
  readonly migrationId: string;
  readonly action: Action;
  /** The phase the migration was in. */
  readonly phase: Phase;
  /** Why, in decideNext()'s vocabulary: `read-new-before-verified`, `contract-not-fully-on`, `guard`, … */
  readonly code: ControllerRefusalCode;
  readonly reason: string;
  readonly hint: string;
  /** The flag that asked for the step, e.g. `orders-amount.read-new`. */
  readonly flag: string | null;
  readonly at: Date;
}

/** A phase change this controller committed (other processes' changes reach routers through the state store). */
export interface ControllerTransitionEvent {
  readonly kind: 'transition';
  readonly migrationId: string;
  readonly action: Action;
  readonly from: Phase;
  readonly to: Phase;
  /** The flag that caused it; null for steps that follow by themselves (verify once the backfill is done). */
  readonly flag: string | null;
  readonly at: Date;
}

/** This controller took or gave up the lead of a migration. */
export interface ControllerLeaderEvent {
  readonly kind: 'leader';
  readonly migrationId: string;
  readonly leader: boolean;
  /** `acquired`; `lost` (its connection failed, or another process holds the lock now); `stopped` (stop()). */
  readonly reason: 'acquired' | 'lost' | 'stopped';
  readonly at: Date;
}

/**
 * Calls the application's listener; a listener that throws is logged once per message and never stops the
 * controller (a reporting bug must not hold a migration back).
 */
export function eventSink(
  listener: ((event: ControllerEvent) => void) | undefined,
  logger: Logger,
): (event: ControllerEvent) => void {
  if (listener === undefined) return () => undefined;
  if (typeof listener !== 'function')
    throw new TypeError('Controller: options.onEvent must be a function (event) => void.');
  let lastError: string | null = null;
  return (event) => {
    try {
      listener(event);
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      if (message !== lastError)
        logger.error(`phaseflag: controller: onEvent threw on a ${event.kind} event: ${message}`, {
          migrationId: event.migrationId,
        });
      lastError = message;
    }
  };
}
