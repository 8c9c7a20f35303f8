/**
 * One orders-service instance as a child process, started as its README says (`node --import tsx src/server.ts`
 * with its environment). The instance speaks on stdout in JSON lines (listening, phase, refused, leader, …);
 * this keeps every line, lets the demo subscribe to them and wait for one, and stops the process on SIGTERM,
 * with SIGKILL as the last resort.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ServiceEvent {
  event: string;
  instanceId?: string;
  migration?: string;
  phase?: string;
  /** When the demo read the line (ms since epoch). */
  receivedAt: number;
  [key: string]: unknown;
}

/** GET /phaseflag: the instance's view of each migration. */
export interface ServiceMigrationView {
  id: string;
  phase: string;
  readsNew: boolean | 'partial';
  writes: string[];
  leader: boolean;
}

const require = createRequire(import.meta.url);
/** The service's package directory: found through the workspace dependency, not a relative path. */
export const SERVICE_DIR = dirname(require.resolve('@phaseflag/example-orders-service/package.json'));

export class ServiceProcess {
  readonly events: ServiceEvent[] = [];
  private readonly stderrTail: string[] = [];
  private readonly listeners = new Set<(e: ServiceEvent) => void>();
  readonly exited: Promise<unknown>;
  url = '';

  private constructor(
    readonly instanceId: string,
    private readonly child: ChildProcess,
    private readonly echoStderr: boolean,
  ) {
    this.exited = once(child, 'exit').catch(() => undefined);
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 200) this.stderrTail.shift();
      if (this.echoStderr) process.stderr.write(`[${instanceId}] ${line}\n`);
    });
  }

  /** Starts the instance and waits for its `listening` line (60 s: the first start compiles with tsx). */
  static async start(
    instanceId: string,
    env: NodeJS.ProcessEnv,
    options: { verbose?: boolean } = {},
  ): Promise<ServiceProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(SERVICE_DIR, 'src', 'server.ts')], {
      cwd: SERVICE_DIR,
      // service.instance.id names the instance on its spans (the timeline shows who did what).
      env: {
        ...env,
        INSTANCE_ID: instanceId,
        OTEL_RESOURCE_ATTRIBUTES: [env.OTEL_RESOURCE_ATTRIBUTES, `service.instance.id=${instanceId}`]
          .filter(Boolean)
          .join(','),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const service = new ServiceProcess(instanceId, child, options.verbose ?? false);
    const listening = await service.waitFor((e) => e.event === 'listening', 60_000, 'its "listening" line');
    service.url = String(listening.url);
    return service;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Called for every JSON line from now on. Returns the unsubscribe function. */
  subscribe(listener: (e: ServiceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first event (already received or to come) matching `predicate`. */
  waitFor(predicate: (e: ServiceEvent) => boolean, timeoutMs: number, what: string): Promise<ServiceEvent> {
    const seen = this.events.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = (error?: Error, event?: ServiceEvent) => {
        clearTimeout(timer);
        unsubscribe();
        this.child.off('exit', onExit);
        if (error) reject(error);
        else resolve(event!);
      };
      const timer = setTimeout(
        () => done(this.failure(`did not report ${what} within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      const unsubscribe = this.subscribe((e) => predicate(e) && done(undefined, e));
      const onExit = () =>
        done(
          this.failure(
            `exited (code ${this.child.exitCode}, signal ${this.child.signalCode}) before reporting ${what}`,
          ),
        );
      this.child.once('exit', onExit);
      if (!this.alive) onExit();
    });
  }

  async view(): Promise<ServiceMigrationView[]> {
    const response = await fetch(`${this.url}/phaseflag`, { signal: AbortSignal.timeout(5_000) });
    if (!response.ok) throw new Error(`${this.instanceId}: GET /phaseflag answered ${response.status}`);
    const body = (await response.json()) as ServiceMigrationView[] | { migrations: ServiceMigrationView[] };
    return Array.isArray(body) ? body : body.migrations;
  }

  /** SIGTERM (the service stops its controller, flushes its spans and exits), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** The last lines the instance wrote to stderr, for a failure message. */
  stderr(lines = 20): string {
    return this.stderrTail.slice(-lines).join('\n');
  }

  private failure(message: string): Error {
    const tail = this.stderr();
    return new Error(
      `${this.instanceId} ${message}${tail ? `\n  its last log lines:\n    ${tail.split('\n').join('\n    ')}` : ''}`,
    );
  }

  private onLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== 'object' || typeof (parsed as { event?: unknown }).event !== 'string') {
      if (this.echoStderr) process.stderr.write(`[${this.instanceId}] ${line}\n`);
      return;
    }
    const event: ServiceEvent = {
      instanceId: this.instanceId,
      ...(parsed as { event: string }),
      receivedAt: Date.now(),
    };
    this.events.push(event);
    for (const listener of this.listeners) listener(event);
  }
}
