import { TestkitError, messageOf } from '../errors.js';

/** A strategy as the Admin API returns it. Parameters are strings (`rollout: "50"`), as in the Unleash UI. */
export interface AdminStrategy {
  id: string;
  name: string;
  parameters: Record<string, string>;
  constraints: unknown[];
  segments?: number[];
  disabled?: boolean | null;
  sortOrder?: number;
  [key: string]: unknown;
}

export interface AdminEnvironment {
  name: string;
  enabled: boolean;
  type?: string;
  strategies: AdminStrategy[];
  [key: string]: unknown;
}

/** A flag as `GET /api/admin/projects/:project/features/:name` returns it. */
export interface AdminFeature {
  name: string;
  description?: string | null;
  type: string;
  project: string;
  archived?: boolean;
  environments: AdminEnvironment[];
  [key: string]: unknown;
}

export interface AdminTag {
  type: string;
  value: string;
}

export interface FlexibleRolloutInput {
  /** Percentage 0-100. */
  rollout: number;
  /** `default` (userId, then sessionId, then random), `userId`, `sessionId`, `random` or a context field. */
  stickiness?: string;
  /** Defaults to the flag name, as the UI does: the same user lands in the same bucket for every strategy of the flag. */
  groupId?: string;
  constraints?: unknown[];
}

/**
 * What an operator does in the Unleash UI, through the Admin API it calls (`Authorization: <admin token>`). Tests
 * drive flags only through this, never through the database or a client, so they see what production sees.
 */
export class UnleashAdmin {
  readonly project: string;

  constructor(
    readonly url: string,
    private readonly token: string,
    options: { project?: string } = {},
  ) {
    this.project = options.project ?? 'default';
  }

  async createFlag(
    name: string,
    options: { description?: string; project?: string; type?: string } = {},
  ): Promise<AdminFeature> {
    const project = options.project ?? this.project;
    await this.request('POST', `/api/admin/projects/${enc(project)}/features`, {
      name,
      description: options.description ?? '',
      type: options.type ?? 'release',
      impressionData: false,
    });
    const created = await this.getFlag(name, { project });
    if (!created) throw adminError(`flag "${name}" was created but cannot be read back`, 0, '');
    return created;
  }

  /** Adds a `flexibleRollout` (the UI's "Gradual rollout") and returns its id. */
  async addFlexibleRollout(flag: string, env: string, input: FlexibleRolloutInput): Promise<string> {
    const body = {
      name: 'flexibleRollout',
      constraints: input.constraints ?? [],
      parameters: {
        rollout: String(input.rollout),
        stickiness: input.stickiness ?? 'default',
        groupId: input.groupId ?? flag,
      },
    };
    const strategy = (await this.request(
      'POST',
      `${this.featurePath(flag)}/environments/${enc(env)}/strategies`,
      body,
    )) as AdminStrategy;
    return strategy.id;
  }

  /** Moves the rollout slider: a JSON Patch on `/parameters/rollout` (parameters are strings). */
  async setRollout(flag: string, env: string, strategyId: string, rollout: number): Promise<void> {
    await this.request('PATCH', `${this.featurePath(flag)}/environments/${enc(env)}/strategies/${enc(strategyId)}`, [
      { op: 'replace', path: '/parameters/rollout', value: String(rollout) },
    ]);
  }

  async enable(flag: string, env: string): Promise<void> {
    await this.request('POST', `${this.featurePath(flag)}/environments/${enc(env)}/on`);
  }

  async disable(flag: string, env: string): Promise<void> {
    await this.request('POST', `${this.featurePath(flag)}/environments/${enc(env)}/off`);
  }

  /** Archives the flag (the UI's "Archive"); clients stop receiving it. */
  async archive(flag: string): Promise<void> {
    await this.request('DELETE', this.featurePath(flag));
  }

  /** The flag with its environments and strategies, or undefined when the project has no such (live) flag. */
  async getFlag(flag: string, options: { project?: string } = {}): Promise<AdminFeature | undefined> {
    try {
      return (await this.request('GET', this.featurePath(flag, options.project))) as AdminFeature;
    } catch (error) {
      if (error instanceof TestkitError && (error as AdminRequestError).status === 404) return undefined;
      throw error;
    }
  }

  async addTag(flag: string, tag: AdminTag): Promise<void> {
    await this.request('POST', `/api/admin/features/${enc(flag)}/tags`, tag);
  }

  async getTags(flag: string): Promise<AdminTag[]> {
    const body = (await this.request('GET', `/api/admin/features/${enc(flag)}/tags`)) as { tags: AdminTag[] };
    return body.tags.map(({ type, value }) => ({ type, value }));
  }

  /** Any other Admin API call, with the token set; returns the parsed JSON body (undefined when empty). */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.url), {
        method,
        headers: { Authorization: this.token, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new TestkitError(
        'PF_TESTKIT_UNLEASH_UNREACHABLE',
        `${method} ${path} could not reach Unleash at ${this.url}: ${messageOf(error)}`,
        'The test server is stopped (stop() or restart() in progress) or never started.',
        { cause: error },
      );
    }
    const text = await response.text();
    if (!response.ok)
      throw adminError(`${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`, response.status, text);
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  private featurePath(flag: string, project = this.project): string {
    return `/api/admin/projects/${enc(project)}/features/${enc(flag)}`;
  }
}

/** A non-2xx answer from the Admin API; `status` and `body` say what Unleash refused. */
export interface AdminRequestError extends TestkitError {
  status: number;
  body: string;
}

function adminError(message: string, status: number, body: string): AdminRequestError {
  const error = new TestkitError(
    'PF_TESTKIT_UNLEASH_ADMIN',
    message,
    'Read the body: Unleash names the field it rejected.',
  ) as AdminRequestError;
  error.status = status;
  error.body = body;
  return error;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
