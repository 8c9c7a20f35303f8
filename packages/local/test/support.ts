import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True once the process is gone and the directory deleted (the reaper may take a moment after an exit). */
export async function gone(pid: number, dir: string, ms = 60_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(200)) {
    if (!alive(pid) && !existsSync(dir)) return true;
  }
  return false;
}

/** The embedded servers' data directories this process (or `pid`) has in the temp dir. */
export function ownDataDirs(pid = process.pid): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith(`phaseflag-embedded-${pid}-`));
}

/** The names of the databases on the server `url` names that start with `prefix`. */
export async function databasesLike(url: string, prefix: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1',
      [prefix],
    );
    return rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

/** `GET|POST <url><path>` with a token; resolves to the status and the parsed body. */
export async function api(
  url: string,
  path: string,
  token: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}${path}`, {
    method: init.method ?? 'GET',
    headers: { Authorization: token, 'Content-Type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Starts `node --input-type=module -e script` and resolves with the child and the first line it prints as JSON. */
export async function spawnScript<T>(script: string): Promise<{ child: ChildProcess; first: T }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`exited early with ${String(code)}`)));
  });
  return { child, first: JSON.parse(line) as T };
}
