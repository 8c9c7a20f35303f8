import { chown, appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knex, { type Knex } from 'knex';
import { TestkitError, messageOf } from '../errors.js';
import { findFreePort } from '@phaseflag/local/internal';
import { onProcessExit, readPostmasterPid, reapAfterExit } from '@phaseflag/local/internal';
import { waitFor } from '../wait-for.js';
import { serverOsUser } from '@phaseflag/local/internal';
import { findPostgresBinDir, replicaUnavailableReason, runPostgresTool } from './postgres-binaries.js';

export interface StartReplicaOptions {
  /** Directory with initdb, pg_ctl, pg_basebackup, postgres; default: newest under /usr/lib/postgresql. */
  binDir?: string;
  /** Bound for each start-up step; default 60 000 ms. */
  timeoutMs?: number;
}

export interface ReplicaPair {
  /** `postgres` superuser, trust auth, database `postgres`. */
  primaryUrl: string;
  /** Hot standby of the primary: read-only. */
  replicaUrl: string;
  /** Stops applying WAL on the replica; WAL keeps arriving, only replay stops. Resolves once paused. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** Waits until the replica has replayed everything the primary had written when called (replay must be on). */
  waitForCatchUp(options?: { timeoutMs?: number }): Promise<void>;
  /** Immediate shutdown of both servers and removal of their data. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Appended to the primary's postgresql.conf; pg_basebackup copies the file, so the replica gets the same values.
 * That matters: a hot standby refuses to start when max_connections or max_wal_senders are below the primary's.
 * Unix sockets are off so the pair never collides with the system cluster's socket directory.
 */
const CLUSTER_SETTINGS = `
# phaseflag testkit: a throw-away primary + replica pair
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 4
wal_keep_size = '64MB'
hot_standby = on
wal_receiver_status_interval = '1s'
max_connections = 30
shared_buffers = '16MB'
fsync = off
`;

/**
 * Starts a private primary and a streaming replica from the system's PostgreSQL binaries. The machine's own
 * cluster has no `replication` line in pg_hba.conf; a fresh initdb with `--auth=trust` does allow replication
 * from 127.0.0.1, so the pair needs no changes to anything shared.
 */
export async function startReplica(options: StartReplicaOptions = {}): Promise<ReplicaPair> {
  const binDir = options.binDir ?? findPostgresBinDir();
  const unavailable = replicaUnavailableReason(binDir);
  if (unavailable || !binDir) {
    throw new TestkitError(
      'PF_TESTKIT_REPLICA_UNAVAILABLE',
      `Cannot start a streaming replica: ${unavailable}.`,
      'Guard the suite with canStartReplica() and skip it with replicaUnavailableReason() as the reason.',
    );
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const root = await mkdtemp(join(tmpdir(), 'phaseflag-replica-'));
  const user = serverOsUser();
  if (user) await chown(root, user.uid, user.gid);
  const primaryDir = join(root, 'primary');
  const replicaDir = join(root, 'replica');
  const primaryPort = await findFreePort();
  let replicaPort = await findFreePort();
  while (replicaPort === primaryPort) replicaPort = await findFreePort();

  const run = (tool: string, args: string[]) => runPostgresTool(binDir, tool, args, { cwd: root, timeoutMs });
  const startServer = (dataDir: string, port: number, log: string) =>
    run('pg_ctl', [
      '-D',
      dataDir,
      '-l',
      join(root, log),
      '-o',
      `-p ${port}`,
      '-w',
      '-t',
      String(timeoutMs / 1000),
      'start',
    ]);
  const startedDirs: string[] = [];
  const pools: Knex[] = [];
  // Replica first: stopping the primary first makes the replica log reconnect attempts while it goes down.
  const stopServers = async () => {
    await Promise.all(pools.map((pool) => pool.destroy()));
    for (const dataDir of [...startedDirs].reverse()) {
      await run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    }
  };
  const unregisterExit = onProcessExit(() => killOnExit(root, startedDirs));

  try {
    await run('initdb', [
      '-D',
      primaryDir,
      '--auth=trust',
      '-U',
      'postgres',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await appendFile(join(primaryDir, 'postgresql.conf'), CLUSTER_SETTINGS);
    await startServer(primaryDir, primaryPort, 'primary.log');
    startedDirs.push(primaryDir);
    // --checkpoint=fast: the default spread checkpoint can make the backup wait minutes for nothing.
    await run('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      replicaDir,
      '-R',
      '-X',
      'stream',
      '--checkpoint=fast',
      '--no-sync',
    ]);
    await startServer(replicaDir, replicaPort, 'replica.log');
    startedDirs.push(replicaDir);
  } catch (error) {
    const logs = await logTails(root);
    unregisterExit();
    await stopServers();
    await rm(root, { recursive: true, force: true });
    throw new TestkitError(
      'PF_TESTKIT_REPLICA_START',
      `Starting the primary + replica pair failed: ${messageOf(error)}\n${logs}`,
      'Check the server logs above; a port taken between probing and binding is worth a retry.',
      { cause: error },
    );
  }

  const primaryUrl = `postgres://postgres@127.0.0.1:${primaryPort}/postgres`;
  const replicaUrl = `postgres://postgres@127.0.0.1:${replicaPort}/postgres`;
  const primary = adminPool(primaryUrl);
  const replica = adminPool(replicaUrl);
  pools.push(primary, replica);
  const scalar = async <T>(db: Knex, sql: string, bindings: readonly Knex.RawBinding[] = []) =>
    (await db.raw<{ rows: Array<{ value: T }> }>(sql, bindings)).rows[0]?.value as T;

  let stopped: Promise<void> | undefined;
  const pair: ReplicaPair = {
    primaryUrl,
    replicaUrl,
    pauseReplay: async () => {
      await replica.raw('SELECT pg_wal_replay_pause()');
      // The request is honoured before the next record is applied; wait until the startup process confirms.
      await waitFor(
        async () => (await scalar<string>(replica, 'SELECT pg_get_wal_replay_pause_state() AS value')) === 'paused',
        {
          timeoutMs,
          description: 'WAL replay to pause on the replica',
        },
      );
    },
    resumeReplay: async () => {
      await replica.raw('SELECT pg_wal_replay_resume()');
    },
    waitForCatchUp: async (catchUp = {}) => {
      const target = await scalar<string>(primary, 'SELECT pg_current_wal_lsn()::text AS value');
      await waitFor(() => scalar<boolean>(replica, 'SELECT pg_last_wal_replay_lsn() >= ?::pg_lsn AS value', [target]), {
        timeoutMs: catchUp.timeoutMs ?? timeoutMs,
        description: `the replica to replay up to ${target}`,
      });
    },
    stop: () =>
      (stopped ??= (async () => {
        unregisterExit();
        await stopServers();
        await rm(root, { recursive: true, force: true });
      })()),
  };

  try {
    await waitFor(
      () => scalar<boolean>(primary, "SELECT count(*) > 0 AS value FROM pg_stat_replication WHERE state = 'streaming'"),
      { timeoutMs, description: 'the replica to start streaming from the primary' },
    );
  } catch (error) {
    const logs = await logTails(root);
    await pair.stop();
    throw new TestkitError('PF_TESTKIT_REPLICA_START', `${messageOf(error)}\n${logs}`, 'Check the server logs above.', {
      cause: error,
    });
  }
  return pair;
}

function adminPool(connectionString: string): Knex {
  return knex({ client: 'pg', connection: connectionString, pool: { min: 0, max: 2 } });
}

/** Immediate shutdown on process exit; the reaper deletes the data once both postmasters are gone. */
function killOnExit(root: string, dataDirs: string[]): void {
  const pids = dataDirs.map(readPostmasterPid).filter((pid): pid is number => pid !== undefined);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // Already gone.
    }
  }
  reapAfterExit(root, pids);
}

async function logTails(root: string): Promise<string> {
  const tails: string[] = [];
  for (const name of ['primary.log', 'replica.log']) {
    const text = await readFile(join(root, name), 'utf8').catch(() => undefined);
    if (text) tails.push(`--- ${name} ---\n${text.split('\n').slice(-20).join('\n')}`);
  }
  return tails.join('\n');
}
