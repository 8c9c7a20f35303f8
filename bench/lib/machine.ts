import { cpus, loadavg, release, totalmem } from 'node:os';
import type { Knex } from 'knex';

export interface MachineFacts {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  node: string;
  loadAtStart: number[];
  loadAtEnd?: number[];
}

export function machineFacts(): MachineFacts {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    loadAtStart: loadavg(),
  };
}

export interface PostgresFacts {
  version: string;
  settings: Record<string, string>;
  pgStatStatements: string;
}

const SETTINGS = [
  'shared_buffers',
  'wal_level',
  'synchronous_commit',
  'max_wal_size',
  'checkpoint_timeout',
  'fsync',
  'full_page_writes',
  'wal_compression',
  'autovacuum',
  'autovacuum_naptime',
  'work_mem',
  'maintenance_work_mem',
  'effective_io_concurrency',
  'wal_writer_delay',
  'wal_buffers',
];

export async function postgresFacts(knex: Knex): Promise<PostgresFacts> {
  const version = (await knex.raw('SELECT version() AS v')).rows[0].v as string;
  const rows = (await knex.raw('SELECT name, setting, unit FROM pg_settings WHERE name = ANY(?)', [SETTINGS])).rows as {
    name: string;
    setting: string;
    unit: string | null;
  }[];
  const settings: Record<string, string> = {};
  for (const name of SETTINGS) {
    const r = rows.find((x) => x.name === name);
    if (r) settings[name] = (await knex.raw('SELECT current_setting(?) AS v', [name])).rows[0].v as string;
  }
  const preload = (await knex.raw("SELECT current_setting('shared_preload_libraries') AS v")).rows[0].v as string;
  const available = (
    await knex.raw("SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'pg_stat_statements'")
  ).rows[0].n as number;
  const pgStatStatements = preload
    .split(',')
    .map((s) => s.trim())
    .includes('pg_stat_statements')
    ? 'loaded'
    : available
      ? 'installed but not in shared_preload_libraries (loading it needs a server restart, which a shared server does not get from a benchmark): EXPLAIN (ANALYZE, BUFFERS, WAL), pg_stat_activity wait events and pg_stat_wal are used instead'
      : 'not available: EXPLAIN (ANALYZE, BUFFERS, WAL), wait events and pg_stat_wal are used instead';
  return { version, settings, pgStatStatements };
}
