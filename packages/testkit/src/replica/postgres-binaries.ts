import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serverOsUser } from '@phaseflag/local/internal';

const DEBIAN_ROOT = '/usr/lib/postgresql';
const REQUIRED = ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'];

/** The newest `/usr/lib/postgresql/<version>/bin` that has every tool a primary + replica pair needs. */
export function findPostgresBinDir(root = DEBIAN_ROOT): string | undefined {
  let versions: string[];
  try {
    versions = readdirSync(root).filter((name) => /^\d+(\.\d+)?$/.test(name));
  } catch {
    return undefined;
  }
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (REQUIRED.every((tool) => existsSync(join(bin, tool)))) return bin;
  }
  return undefined;
}

/** Why `startReplica` cannot work here, or `undefined` when it can. Suites skip with this as the reason. */
export function replicaUnavailableReason(binDir = findPostgresBinDir()): string | undefined {
  if (!binDir) return `no PostgreSQL server binaries (${REQUIRED.join(', ')}) under ${DEBIAN_ROOT}/<version>/bin`;
  if (serverOsUser() === null) return 'running as root and there is no "postgres" OS user to run the servers as';
  return undefined;
}

export function canStartReplica(): boolean {
  return replicaUnavailableReason() === undefined;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a PostgreSQL tool as the server's OS user with a minimal environment: inherited PGHOST/PGPORT/PGDATABASE
 * from a developer shell would silently redirect pg_basebackup, and the C locale keeps messages parseable.
 */
export function runPostgresTool(
  binDir: string,
  tool: string,
  args: string[],
  options: { cwd: string; timeoutMs?: number },
): Promise<RunResult> {
  const user = serverOsUser();
  return new Promise((resolve, reject) => {
    execFile(
      join(binDir, tool),
      args,
      {
        cwd: options.cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', HOME: options.cwd },
        timeout: options.timeoutMs ?? 120_000,
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      },
      (error, stdout, stderr) => {
        if (error) {
          reject(
            Object.assign(new Error(`${tool} ${args.join(' ')} failed: ${stderr || error.message}`), { cause: error }),
          );
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}
