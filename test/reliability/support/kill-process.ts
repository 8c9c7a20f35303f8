/**
 * The parent's side of kill-child.ts: spawns it with an IPC channel, keeps its messages, waits for the one a test
 * strikes at, and SIGKILLs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./kill-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface ChildMessage {
  type: 'stage' | 'progress' | 'done' | 'error';
  stage?: string;
  phase?: string;
  rowsDone?: number;
  code?: string;
  message?: string;
  at: number;
}

export interface KillChildEnv {
  connection: string;
  stateSchema: string;
  migration: object;
  mode: 'steps' | 'controller';
  instanceId: string;
  verifyBatch?: number;
}

export class KillChild {
  readonly messages: ChildMessage[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<unknown>;
  private waiters = new Set<() => void>();

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m) => {
      this.messages.push(m as ChildMessage);
      for (const w of [...this.waiters]) w();
    });
    child.stderr!.on('data', (d) => this.stderr.push(String(d)));
    child.stdout!.on('data', () => undefined);
    this.exited = once(child, 'exit').then(() => {
      for (const w of [...this.waiters]) w();
    });
  }

  static start(e: KillChildEnv): KillChild {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
      cwd: ROOT,
      env: {
        ...process.env,
        PF_CONNECTION: e.connection,
        PF_STATE_SCHEMA: e.stateSchema,
        PF_MIGRATION: JSON.stringify(e.migration),
        PF_MODE: e.mode,
        PF_INSTANCE_ID: e.instanceId,
        PF_VERIFY_BATCH: String(e.verifyBatch ?? 500),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    return new KillChild(child);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first message matching `predicate`, or null once the child has exited without sending one. */
  async next(predicate: (m: ChildMessage) => boolean, timeoutMs: number): Promise<ChildMessage | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (!this.alive) return null;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `kill-child: no such message within ${timeoutMs} ms; got ${JSON.stringify(this.messages.slice(-5))}; stderr: ${this.stderr.join('')}`,
        );
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  /** SIGKILL now; true when it was still running (the kill landed). */
  async kill(): Promise<boolean> {
    const landed = this.alive;
    if (landed) this.child.kill('SIGKILL');
    await this.exited;
    return landed && this.child.signalCode === 'SIGKILL';
  }

  /** Waits for the child to end by itself; its exit code. */
  async finish(timeoutMs: number): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    return this.child.exitCode;
  }

  lastError(): ChildMessage | undefined {
    return this.messages.filter((m) => m.type === 'error').at(-1);
  }
}
