import { execFileSync } from 'node:child_process';

export interface OsUser {
  uid: number;
  gid: number;
}

/**
 * Postgres refuses to run as root. As root we run every tool as the `postgres` OS user; as anyone else we run
 * them as ourselves. `undefined` means "no switch needed"; `null` means root without a `postgres` user.
 */
export function serverOsUser(): OsUser | undefined | null {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}
