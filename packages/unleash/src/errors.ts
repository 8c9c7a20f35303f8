import { PhaseflagError, redactUrl, type ErrorCodeOf, type PhaseflagErrorOptions } from '@phaseflag/core';

/** How much of a response body an error keeps (scrubbed of tokens first). */
export const MAX_BODY_CHARS = 1000;

/** Unleash could not be reached (connection refused, DNS, timeout): nothing was changed by this call. */
export class UnleashUnavailableError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'UnleashUnavailableError'>;
  /** The Unleash base URL that was tried, its password and credential parameters as `***`. */
  readonly url: string;
  constructor(message: string, options: PhaseflagErrorOptions & { url: string }) {
    super('PF_UNLEASH_UNAVAILABLE', message, options);
    this.url = redactUrl(options.url);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), url: this.url };
  }
}

/**
 * Unleash answered, and refused: `status` and `body` are its answer (the body scrubbed of the tokens we sent and cut
 * to MAX_BODY_CHARS), `hint` says what usually causes it.
 */
export class UnleashRejectedError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'UnleashRejectedError'>;
  readonly status: number;
  readonly body: string;
  /** `METHOD /path` of the refused request. */
  readonly request: string;
  constructor(message: string, options: PhaseflagErrorOptions & { status: number; body: string; request: string }) {
    super('PF_UNLEASH_REJECTED', message, options);
    this.status = options.status;
    this.body = options.body;
    this.request = options.request;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), status: this.status, body: this.body, request: this.request };
  }
}

/** What a refusal usually means, by status, for the Admin API calls provisioning makes. */
export function hintForStatus(status: number, body: string): string {
  if (status === 401)
    return 'The token is missing or unknown. Use an Admin API token (admin tokens look like "*:*.<secret>") or a personal access token.';
  if (status === 403)
    return 'The token may not do this. Client and frontend tokens cannot use the Admin API; use an admin token or a PAT with project access.';
  if (status === 404)
    return 'The project or environment does not exist on this Unleash (a fresh server has project "default" and environments "development" and "production").';
  if (status === 409)
    return "The name is taken: a flag with this name exists in another project or in the archive. Revive or delete it in the Unleash UI, or name the migration's flags with `flags: { ... }`.";
  if (status === 400 && /pattern/i.test(body))
    return "The project enforces a flag naming pattern; name the migration's flags to match it with `flags: { ... }`.";
  if (status === 400) return 'Unleash rejected the request body; the response body names the field.';
  if (status === 429) return 'Unleash is rate-limiting this client; retry later.';
  if (status >= 500)
    return 'Unleash failed on its side; check its logs and its database, then retry (provisioning is idempotent).';
  return 'Read the response body for the reason.';
}
