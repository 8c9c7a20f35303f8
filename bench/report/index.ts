/**
 * Turns one run's figures into bench/RESULTS.md: every target of issue 6 with its figure, its baseline from the
 * same run, the ratio, pass or MISSED, and for each miss what limits it, from the diagnostics the run collected.
 */
import { secs, table, verdict } from '../lib/format.js';

import type { BenchResults } from './results.js';
import { collectTargets } from './targets/index.js';
import { backfillSection, leftBehindSection, memorySection } from './sections/backfill.js';
import { expandSection } from './sections/expand-lock.js';
import { fleetSection } from './sections/fleet.js';
import { machineSection, methodSection } from './sections/machine.js';
import { peersSection } from './sections/peers.js';
import { propagationSection } from './sections/propagation.js';
import { routerSection } from './sections/router-overhead.js';
import { trafficSection } from './sections/traffic.js';
import { writeSection } from './sections/write-amplification.js';

export function renderResults(r: BenchResults): string {
  const targets = collectTargets(r);
  const passed = targets.filter((t) => t.pass === true).length;
  const missed = targets.filter((t) => t.pass === false).length;
  const judged = targets.filter((t) => !t.info).length;
  const out: string[] = [];
  out.push('# phaseflag benchmarks');
  out.push('');
  out.push(
    `Written by \`${r.command}\` (bench/run.ts) on ${r.startedAt}, in ${secs(r.durationSeconds)}${r.renderedAt ? `; the tables re-rendered from that run's figures (\`--render\`) on ${r.renderedAt}` : ''}. Do not edit by hand: rerun the benchmark.`,
  );
  out.push(
    '',
    "Case 10, `phaseflag lint` against squawk on the project's corpus, writes a file of its own: [LINT-RESULTS.md](LINT-RESULTS.md) (`npm run bench -- --only 10` refreshes it alone, in under a minute).",
  );
  if (r.quick)
    out.push(
      '',
      '> **Quick smoke run** (`--quick`): tiny tables, short windows. It proves the benchmark runs; its figures mean little. Run `npm run bench` for real figures.',
    );
  out.push('');
  out.push(
    `**${passed} of ${judged} targets pass, ${missed} missed${judged - passed - missed ? `, ${judged - passed - missed} not measured` : ''}** (and ${targets.length - judged} figures without a target). Every figure is compared with its baseline measured in the same run on the same data, because the machine is shared and noisy: ratios travel, absolute figures do not.`,
  );
  if (r.errors.length) out.push('', ...r.errors.map((e) => `- **case ${e.case} failed**: ${e.message}`));
  out.push('', '## The machine', '');
  out.push(machineSection(r));
  out.push('', '## Targets', '');
  out.push(
    table(
      ['#', 'what', 'figure (baseline from the same run)', 'target', 'result', 'what limits it'],
      targets.map((t) => [t.id, t.what, t.figure, t.target, t.info ? 'figure only' : verdict(t.pass), t.limit || '—']),
    ),
  );
  if (r.backfill) out.push('', backfillSection(r, r.backfill));
  if (r.backfill) out.push('', leftBehindSection(r, r.backfill));
  if (r.writeAmplification) out.push('', writeSection(r.writeAmplification));
  if (r.traffic) out.push('', trafficSection(r.traffic));
  if (r.expand) out.push('', expandSection(r.expand));
  if (r.router) out.push('', routerSection(r.router));
  if (r.backfill) out.push('', memorySection(r, r.backfill));
  out.push('', propagationSection(r.propagation));
  out.push('', fleetSection(r.fleet));
  if (r.peers) out.push('', peersSection(r.peers));
  out.push('', methodSection(r));
  return `${out.join('\n')}\n`;
}
