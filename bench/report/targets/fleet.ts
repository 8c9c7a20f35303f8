/**
 * The targets of case 9 (issue 13, "In a fleet"), stated here before any run: a connection budget per mode, the
 * load an idle instance may cost the state store, and how soon every instance applies a phase.
 */
import type { FleetCase, FleetMode } from '../../cases/fleet.js';
import { fixed, int, ms } from '../../lib/format.js';
import type { BenchResults } from '../results.js';
import type { Target } from './target.js';

/** Per instance at the defaults: one poll a second and one heartbeat every 5 s are 1.2 transactions a second. */
export const LOAD_BUDGET_PER_INSTANCE = 1.5;
/** With LISTEN/NOTIFY an instance hears a commit at once. */
export const DIRECT_PROPAGATION_MS = 1000;
/** Without LISTEN (through a transaction pooler) the poll finds the phase: its interval plus a query's slack. */
export const POOLED_SLACK_MS = 500;

export function fleetTargets(r: BenchResults): Target[] {
  const f = r.fleet;
  if (!f || !f.measured)
    return [
      {
        id: '9',
        what: 'a fleet of service instances: connections, state store load, propagation',
        figure: `not measured: ${f?.reason ?? 'case skipped'}`,
        target: 'see section 9',
        pass: null,
        limit: '',
      },
    ];
  return f.modes.flatMap((m) => modeTargets(f, m));
}

function modeTargets(f: FleetCase, m: FleetMode): Target[] {
  const label = fleetLabel(m);
  // The variant with a name per instance through PgBouncer is a contrast: figures only, no verdict.
  const contrast = m.mode === 'pgbouncer' && m.names === 'per-instance';
  if (!m.measured)
    return [
      {
        id: '9',
        what: `fleet of ${m.instances}, ${label}`,
        figure: `not measured: ${m.reason ?? 'unknown'}`,
        target: 'see section 9',
        pass: null,
        limit: '',
      },
    ];
  const n = m.instances;
  const c = m.connections;
  const idle = c.idle;
  // The peak while the fleet runs: from its start to the end of the migration (or of the idle window).
  const running = (['starting', 'idle', 'migration'] as const).flatMap((s) => (c[s] ? [{ stage: s, ...c[s] }] : []));
  const peakOf = (get: (x: (typeof running)[number]) => number | null) =>
    running.length ? Math.max(...running.map((x) => get(x) ?? 0)) : NaN;
  const peak = peakOf((x) => x.peakTotal);
  const peakStage = running.find((x) => x.peakTotal === peak)?.stage;
  const t: Target[] = [];
  if (m.mode === 'direct') {
    t.push({
      id: '9',
      what: `Postgres connections of ${n} idle instances, direct`,
      figure: `${int(idle?.peakTotal ?? NaN)} at most (median ${int(idle?.medianTotal ?? NaN)}); per instance median ${fixed(idle?.medianPerInstance ?? NaN, 0)}, max ${int(idle?.peakPerInstance ?? NaN)}`,
      target: `≤ 2 per instance (one pooled, on which polls, heartbeats and phase reads take turns; one LISTEN): ≤ ${2 * n}`,
      pass: idle ? idle.peakTotal <= 2 * n : null,
      limit:
        idle && idle.peakTotal > 2 * n
          ? `up to ${int(idle.peakTotal - 2 * n)} instance(s) hold a second pooled connection although the state store runs its background queries in turn (packages/postgres/src/store/state-store.ts inTurn): something else of the instance used its pool while idle`
          : '',
    });
    t.push({
      id: '9',
      what: `Postgres connections of ${n} instances, direct, peak from start to the end of the migration`,
      figure: `${int(peak)}; per instance ${int(peakOf((x) => x.peakPerInstance))} at most`,
      target: `≤ 3 per instance (a router's catalog read beside the background turn, plus LISTEN): ≤ ${3 * n}`,
      pass: peak <= 3 * n,
      limit:
        peak > 3 * n
          ? peakStage === 'starting'
            ? "at start-up: more pooled connections than a router's catalog read and the store's background turn (poll, first phase read, heartbeat, the pooler probe's pooled side); the pool gives them back after 30 s idle"
            : `during ${peakStage}: more than the background turn and LISTEN at a phase change`
          : '',
    });
  } else {
    t.push({
      id: '9',
      what: `Postgres connections of ${n} instances ${label}, peak from start to the end${m.migrated ? ' of the migration' : ''}`,
      figure: `${int(peak)} (PgBouncer's clients: ${int(peakOf((x) => x.peakPoolerClients))} at most)`,
      target: contrast
        ? 'contrast (no migration)'
        : `≤ the pooler's pool size, ${m.poolerPoolSize}, whatever the number of instances`,
      pass: contrast ? null : peak <= (m.poolerPoolSize ?? 0),
      limit: '',
      ...(contrast ? { info: true } : {}),
    });
  }
  if (m.load) {
    const l = m.load;
    t.push({
      id: '9',
      what: `state store load of ${n} idle instances, ${label}`,
      figure: `${fixed(l.perInstanceXactsPerSecond, 2)} transactions/s per instance (${fixed(l.fleetXactsPerSecond)}/s for the fleet, pg_stat_database); ${fixed(l.perInstanceQueriesPerSecond, 2)} queries/s per instance sent`,
      target: contrast
        ? `contrast: the same fleet with one shared application_name`
        : `≤ ${LOAD_BUDGET_PER_INSTANCE} per instance (a poll every ${f.pollIntervalMs / 1000} s, a heartbeat every ${f.heartbeatMs / 1000} s: 1.2)`,
      pass: contrast ? null : l.perInstanceXactsPerSecond <= LOAD_BUDGET_PER_INSTANCE,
      limit:
        !contrast && l.perInstanceXactsPerSecond > LOAD_BUDGET_PER_INSTANCE
          ? 'transactions per query sent: see section 9'
          : contrast
            ? 'PgBouncer sets application_name on the server connection whenever the client it lends it to has another one'
            : '',
      ...(contrast ? { info: true } : {}),
    });
  }
  if (!m.migrated) return t;
  const bound = m.mode === 'direct' ? DIRECT_PROPAGATION_MS : f.pollIntervalMs + POOLED_SLACK_MS;
  const worst = m.transitions.reduce((a, x) => (x.allMs > a.allMs ? x : a), m.transitions[0]!);
  t.push({
    id: '9',
    what: `commit → all ${n} instances apply the phase, ${label}`,
    figure: `median ${ms(m.medianAllMs ?? NaN)}, worst ${ms(m.maxAllMs ?? NaN)} over ${m.transitions.length} transitions`,
    target:
      m.mode === 'direct'
        ? `worst ≤ ${ms(bound)} (LISTEN/NOTIFY)`
        : `worst ≤ poll interval + ${POOLED_SLACK_MS} ms = ${ms(bound)}`,
    pass: (m.maxAllMs ?? Infinity) <= bound,
    limit: (m.maxAllMs ?? Infinity) > bound ? `worst at ${worst.phase}` : '',
  });
  return t;
}

/** "direct", or "through PgBouncer (transaction mode, pool 10)" with ", a name per instance" for the contrast. */
export function fleetLabel(m: FleetMode): string {
  if (m.mode === 'direct') return 'direct';
  return `through PgBouncer (transaction mode, pool ${m.poolerPoolSize}${m.names === 'per-instance' ? ', an application_name per instance' : ''})`;
}
