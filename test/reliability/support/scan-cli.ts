import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The built `phaseflag` binary, run as a person or a script runs it. */
export const CLI = fileURLToPath(new URL('../../../packages/cli/dist/cli.js', import.meta.url));
const HERE = fileURLToPath(new URL('.', import.meta.url));

export interface CliResult {
  exit: number | null;
  stdout: string;
  stderr: string;
  /** The `code` of the `{ "error": … }` document a --json run prints, or null. */
  code: string | null;
}

/**
 * A working directory for the CLI beside this file (so a config file resolves @phaseflag/* from the repository),
 * with the environment the runs get; Unleash and database variables of the parent never leak in.
 */
export class CliDir {
  readonly dir = join(HERE, `.work-${randomBytes(4).toString('hex')}`);

  constructor(private readonly env: Record<string, string>) {
    mkdirSync(this.dir, { recursive: true });
  }

  write(name: string, text: string): void {
    writeFileSync(join(this.dir, name), text);
  }

  async run(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<CliResult> {
    const merged: Record<string, string | undefined> = {
      ...process.env,
      DATABASE_URL: undefined,
      PHASEFLAG_STATE_SCHEMA: undefined,
      UNLEASH_URL: undefined,
      UNLEASH_API_TOKEN: undefined,
      UNLEASH_ADMIN_TOKEN: undefined,
      NO_COLOR: '1',
      ...this.env,
      ...env,
    };
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: this.dir,
      env: Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const [exit] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    let code: string | null = null;
    try {
      code = (JSON.parse(stdout) as { error?: { code?: string } }).error?.code ?? null;
    } catch {
      code = /^(PF_[A-Z_]+):/m.exec(stderr)?.[1] ?? null;
    }
    return { exit, stdout, stderr, code };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A config declaring testkit's amount migration `id` on `<schema>.<table>`, plus `extra` declarations (source). */
export function amountConfig(schema: string, id: string, table = 'orders', extra = ''): string {
  return `import { defineConfig } from '@phaseflag/cli';
import { amountInput } from '@phaseflag/testkit';

export default defineConfig({
  migrations: [amountInput(${JSON.stringify(id)}, ${JSON.stringify(`${schema}.${table}`)})${extra ? `, ${extra}` : ''}],
});
`;
}
