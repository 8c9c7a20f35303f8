/** The section of RESULTS.md for case 9: a fleet of service instances (issue 13, "In a fleet"). */
import type { FleetCase, FleetMode } from '../../cases/fleet.js';
import { fixed, int, ms, secs, table } from '../../lib/format.js';

const STAGES = ['baseline', 'starting', 'idle', 'migration', 'closed'] as const;

export function fleetSection(f: FleetCase | undefined): string {
  const out = ['## 9. A fleet of service instances', ''];
  if (!f || !f.measured) {
    out.push(`Not measured: ${f?.reason ?? 'the case was skipped'}.`);
    return out.join('\n');
  }
  const o = f.options;
  out.push(
    `${o.instances} in-process service instances on a private Postgres ${f.postgresVersion ?? ''} (testkit \`startPrivateServer({ maxConnections: ${o.maxConnections} })\`), each with a knex pool of its own (min ${f.instancePool.min}, max ${f.instancePool.max}, idle timeout 30 s), a Phaseflag of its own (poll every ${f.pollIntervalMs / 1000} s, the default) and a router on one migration (heartbeat every ${f.heartbeatMs / 1000} s, the default); they start ten at a time. An operator, with a Phaseflag and a knex of its own that always connect directly, moves the migration of a ${int(o.rows)}-row table through expand → dual-write → backfill → verify → read-new → contract. Variants: *direct* (the instances connect to Postgres, each with an application_name of its own: LISTEN/NOTIFY plus polling); *pgbouncer* (the instances connect through PgBouncer in transaction mode, \`default_pool_size\` ${o.poolerPoolSize}, with one application_name for all, as replicas of one service have; the operator stays direct); and, as a contrast without a migration, *pgbouncer, a name per instance*: PgBouncer keeps each client's application_name on the server connection it lends, so with a name per instance it sends a \`SET\` before most of their transactions.`,
    '',
    `- **Connections**: pg_stat_activity every ${o.sampleEveryMs} ms, client backends of the database but the operator's and the probe's (by application_name); per instance by application_name (direct only: through PgBouncer the server connections are shared). Stages: *baseline* before the fleet starts, *starting*, then ${secs(o.settleMs / 1000)} of settling (past the pools' 30 s idle timeout, not shown), *idle* (${secs(o.idleMs / 1000)} of heartbeats and polls), *migration*, *closed* after every instance closed.`,
    `- **Load**: the database's transactions (pg_stat_database \`xact_commit + xact_rollback\`) and WAL over the idle window, minus the same over a ${secs(o.baselineMs / 1000)} baseline window with the operator and the probe but no fleet; pg_stat_statements is not loaded on the private server. Beside it, the queries the instances' pools sent (knex's \`query\` event), the client-side count.`,
    "- **Propagation**: per transition, from its commit (the first sighting of its NOTIFY, which Postgres sends at commit: by the operator's watcher, LISTENing on a direct connection, or by an instance that heard it a moment sooner) until the first and the last instance's watcher applies it (its router's phase changes in the same callback); each transition starts at a random point of the instances' polling cycle. `backfilling` and `backfilled` commit a few ms apart, so an instance that polls sees only the second: both count the moment it applied a phase at least as new.",
    '',
    table(
      [
        'mode',
        'stage',
        'samples',
        'fleet: median',
        'fleet: peak',
        'per instance: median / peak',
        'PgBouncer clients: peak',
        'operator: peak',
      ],
      f.modes.flatMap((m) =>
        STAGES.filter((s) => m.connections[s]).map((s) => {
          const c = m.connections[s]!;
          return [
            variant(m),
            s,
            String(c.samples),
            fixed(c.medianTotal, 0),
            int(c.peakTotal),
            c.medianPerInstance === null ? '—' : `${fixed(c.medianPerInstance, 0)} / ${int(c.peakPerInstance ?? NaN)}`,
            c.peakPoolerClients === null ? '—' : int(c.peakPoolerClients),
            int(c.peakOperator),
          ];
        }),
      ),
    ),
    '',
    table(
      [
        'mode',
        'idle window',
        'transactions/s: baseline → idle fleet',
        'the fleet',
        'per instance',
        'queries/s sent per instance',
        'WAL/s: baseline → idle fleet',
        'start-up of the fleet',
      ],
      f.modes
        .filter((m) => m.load)
        .map((m) => {
          const l = m.load!;
          return [
            variant(m),
            secs(l.windowSeconds),
            `${fixed(l.baselineXactsPerSecond)} → ${fixed(l.idleXactsPerSecond)}`,
            fixed(l.fleetXactsPerSecond),
            fixed(l.perInstanceXactsPerSecond, 2),
            fixed(l.perInstanceQueriesPerSecond, 2),
            `${kb(l.baselineWalBytesPerSecond)} → ${kb(l.idleWalBytesPerSecond)}`,
            secs(m.startSeconds ?? NaN),
          ];
        }),
    ),
    '',
    table(
      ['mode', 'transition', 'first instance', 'every instance'],
      f.modes.flatMap((m) =>
        m.transitions.map((t) => [variant(m), `→ ${t.phase} (v${t.version})`, ms(t.firstMs), ms(t.allMs)]),
      ),
    ),
  );
  out.push('', ...observations(f));
  const notes = f.modes.filter((m) => m.reason).map((m) => `- ${variant(m)}: ${m.reason}`);
  if (notes.length) out.push('', ...notes);
  return out.join('\n');
}

/** What one instance holds, by design; then what this run shows beyond the tables, computed from its figures. */
function observations(f: FleetCase): string[] {
  const out = [
    "What one service instance holds: **its pool**, shared with the application: phaseflag's background queries (its poll every second, each router's heartbeat every 5 s, phase reads, the pooler probe's pooled side) take turns on one connection, and a router's creation reads the catalog on another for a moment; **its watcher**: one connection of its own outside the pool, for LISTEN (one per Phaseflag, whatever the number of migrations and routers; none behind a transaction pooler, where it polls); **a leader connection** only where a Controller runs (one of its own, holding session advisory locks), none in this fleet. The operator's connections (its pool and its watcher) are counted apart.",
  ];
  const pooled = f.modes.find((m) => m.mode === 'pgbouncer' && m.migrated);
  if (pooled && pooled.transitions.length) {
    const fastest = Math.min(...pooled.transitions.map((t) => t.allMs));
    if (fastest > 100)
      out.push(
        '',
        `Through PgBouncer the phase reached the whole fleet by polling: no transition reached every instance sooner than ${ms(fastest)} after its commit. A LISTEN sent through a transaction pooler runs on a server connection that PgBouncer then lends to other clients, so the watchers' own connections hear nothing; the first instance is often quick only because ${pooled.instances} instances polling once a second put a poll every few tens of ms.`,
      );
  }
  const direct = f.modes.find((m) => m.mode === 'direct' && m.startSeconds !== undefined);
  if (direct && pooled?.startSeconds !== undefined)
    out.push(
      '',
      `Starting the ${direct.instances} instances took ${secs(direct.startSeconds!)} direct and ${secs(pooled.startSeconds)} through PgBouncer: directly, each instance's connections are new Postgres backends (a process each, on a server sharing this machine's cores); PgBouncer lends connections it already has. After the fleet closed, PgBouncer kept its server connections (its \`server_idle_timeout\`, 10 minutes by default).`,
    );
  return out;
}

/** The variant's short name in the tables. */
const variant = (m: FleetMode) =>
  m.mode === 'direct' ? 'direct' : m.names === 'shared' ? 'pgbouncer' : 'pgbouncer, a name per instance';

const kb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)} kB` : '—');
