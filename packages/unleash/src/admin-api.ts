import { redactSecrets, redactUrl } from '@phaseflag/core';
import { MAX_BODY_CHARS, UnleashRejectedError, UnleashUnavailableError, hintForStatus } from './errors.js';

/** The part of a flag the Admin API returns that provisioning reads. */
export interface AdminFeature {
  name: string;
  description?: string | null;
  project: string;
  environments: Array<{
    name: string;
    enabled: boolean;
    strategies: Array<{ id: string; name: string; parameters?: Record<string, string> }>;
  }>;
}

export interface AdminApiOptions {
  /** Unleash's base URL, e.g. `https://unleash.example.com` (with any base path, without `/api`). */
  url: string;
  /** An admin token (`*:*.<secret>`) or a personal access token. */
  token: string;
  timeoutMs: number;
}

/**
 * The few Admin API calls provisioning makes. Kept apart from the decisions (provision.ts) as unleash-client keeps
 * fetching apart from evaluating. Errors are typed: unreachable vs. refused, with the status and body.
 */
export class AdminApi {
  private readonly base: string;

  constructor(private readonly options: AdminApiOptions) {
    this.base = options.url.endsWith('/') ? options.url : `${options.url}/`;
  }

  /** The base URL as it may be shown: its password and credential parameters as `***`. */
  get url(): string {
    return redactUrl(this.options.url);
  }

  /** undefined when the project has no such live flag (archived flags and other projects' flags answer 404 too). */
  async getFeature(project: string, name: string): Promise<AdminFeature | undefined> {
    return (await this.request('GET', `api/admin/projects/${enc(project)}/features/${enc(name)}`, undefined, [404])) as
      AdminFeature | undefined;
  }

  /** Created off in every environment (Unleash's rule for new flags). */
  async createFeature(project: string, body: { name: string; description: string; type: string }): Promise<void> {
    await this.request('POST', `api/admin/projects/${enc(project)}/features`, { ...body, impressionData: false });
  }

  /** Returns the new strategy's id. */
  async addStrategy(
    project: string,
    feature: string,
    environment: string,
    strategy: { name: string; parameters: Record<string, string> },
  ): Promise<string> {
    const created = (await this.request(
      'POST',
      `api/admin/projects/${enc(project)}/features/${enc(feature)}/environments/${enc(environment)}/strategies`,
      { ...strategy, constraints: [] },
    )) as { id: string };
    return created.id;
  }

  /** Turns the flag on or off in one environment (on with no strategy: Unleash adds a 100% rollout of its own). */
  async setEnabled(project: string, feature: string, environment: string, on: boolean): Promise<void> {
    await this.request(
      'POST',
      `api/admin/projects/${enc(project)}/features/${enc(feature)}/environments/${enc(environment)}/${on ? 'on' : 'off'}`,
    );
  }

  /** A JSON Patch on one strategy (`[{ op: 'replace', path: '/parameters/rollout', value: '50' }]`). */
  async patchStrategy(
    project: string,
    feature: string,
    environment: string,
    strategyId: string,
    patch: Array<{ op: 'replace'; path: string; value: string }>,
  ): Promise<void> {
    await this.request(
      'PATCH',
      `api/admin/projects/${enc(project)}/features/${enc(feature)}/environments/${enc(environment)}/strategies/${enc(strategyId)}`,
      patch,
    );
  }

  async tagTypeExists(name: string): Promise<boolean> {
    return this.exists(`api/admin/tag-types/${enc(name)}`);
  }

  /** GET that answers 404 for a missing object. */
  async exists(path: string): Promise<boolean> {
    return (await this.request('GET', path, undefined, [404])) !== undefined;
  }

  async createTagType(name: string, description: string): Promise<void> {
    await this.request('POST', 'api/admin/tag-types', { name, description });
  }

  async getTags(feature: string): Promise<Array<{ type: string; value: string }>> {
    const body = (await this.request('GET', `api/admin/features/${enc(feature)}/tags`)) as {
      tags?: Array<{ type: string; value: string }>;
    };
    return body.tags ?? [];
  }

  async addTag(feature: string, tag: { type: string; value: string }): Promise<void> {
    await this.request('POST', `api/admin/features/${enc(feature)}/tags`, tag);
  }

  /**
   * One request. Statuses in `absentOn` resolve to undefined (a lookup that found nothing); any other non-2xx
   * throws UnleashRejectedError; a network failure or timeout throws UnleashUnavailableError.
   */
  private async request(method: string, path: string, body?: unknown, absentOn: number[] = []): Promise<unknown> {
    const what = `${method} /${path}`;
    let response: Response;
    try {
      response = await fetch(new URL(path, this.base), {
        method,
        headers: {
          Authorization: this.options.token,
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new UnleashUnavailableError(
        `Unleash at ${this.url} could not be reached (${what}): ${this.scrub(reason)}.`,
        {
          url: this.options.url,
          value: what,
          hint: "Check the URL (the server's base URL, without /api) and that Unleash is up; nothing was changed by this call, and provisioning can be run again.",
          cause: this.scrubbedCause(error),
        },
      );
    }
    const text = await response.text();
    if (absentOn.includes(response.status)) return undefined;
    if (!response.ok) {
      // A body may echo the request (a proxy's error page, a debugging gateway): never show the token it carried.
      const shown = this.scrub(text);
      throw new UnleashRejectedError(
        `Unleash refused ${what} at ${this.url} with ${response.status}: ${shown.slice(0, 300)}`,
        {
          status: response.status,
          body: shown,
          request: what,
          value: body,
          hint: hintForStatus(response.status, shown),
        },
      );
    }
    return text ? (JSON.parse(text) as unknown) : {};
  }

  private scrubbedCause(error: unknown): Error {
    return scrubbedError(error, (text) => this.scrub(text));
  }

  /** A text from the network as it may be shown: without the token, the URL's password, and at most MAX_BODY_CHARS. */
  private scrub(text: string): string {
    const password = URL.canParse(this.options.url) ? decodeURIComponent(new URL(this.options.url).password) : '';
    return redactSecrets(text, { secrets: [this.options.token, password], maxLength: MAX_BODY_CHARS });
  }
}

/**
 * An error as a cause that may be shown: fetch names the whole URL in its messages ("Request cannot be constructed
 * from a URL that includes credentials: http://user:password@…"), so the message, the stack and the causes below
 * are copies passed through `scrub`. The name and code stay, for a caller that branches on them.
 */
function scrubbedError(error: unknown, scrub: (text: string) => string, depth = 0): Error {
  const e = (error ?? {}) as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown; cause?: unknown };
  const copy = new Error(scrub(String(e.message ?? error)));
  copy.name = typeof e.name === 'string' ? e.name : 'Error';
  copy.stack = scrub(typeof e.stack === 'string' ? e.stack : `${copy.name}: ${copy.message}`);
  if (e.code !== undefined) Object.assign(copy, { code: e.code });
  if (e.cause !== undefined && depth < 5) Object.assign(copy, { cause: scrubbedError(e.cause, scrub, depth + 1) });
  return copy;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
