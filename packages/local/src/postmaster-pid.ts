import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The postmaster's pid from the first line of `postmaster.pid`, which Postgres writes on start. */
export function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const firstLine = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '';
    const pid = Number.parseInt(firstLine, 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}
