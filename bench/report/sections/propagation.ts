/** The section of RESULTS.md for case 8: flag propagation. */
import type { PropagationCase } from '../../cases/propagation.js';
import { ms, secs, table } from '../../lib/format.js';
import { median } from '../../lib/stats.js';

export function propagationSection(p: PropagationCase | undefined): string {
  const out = ['## 8. Flag propagation', ''];
  if (!p || !p.measured) {
    out.push(`Not measured yet: ${p?.reason ?? 'the case was skipped'}.`);
    return out.join('\n');
  }
  out.push(
    `A real unleash-server (testkit \`startUnleash()\`, started in ${ms(p.serverStartMs ?? NaN)}) and in-process service instances, each an unleash-client with its own polling, an UnleashFlagSource and a Router in phase read-new. Each toggle goes through the Admin API after a random pause (so it lands anywhere in the instances' polling cycle); the figure is the time from sending it until the last instance's router reads the other column.${p.reason ? ` Note: ${p.reason}.` : ''}`,
  );
  out.push('');
  out.push(
    table(
      [
        'refresh interval',
        'instances',
        'toggles',
        'first instance (median)',
        'every instance: median',
        'every instance: worst',
        'each toggle (ms)',
      ],
      p.series.map((s) => [
        secs(s.refreshIntervalMs / 1000),
        String(s.instances),
        String(s.toggles.length),
        ms(median(s.toggles.map((x) => x.firstMs))),
        ms(s.medianAllMs),
        ms(s.maxAllMs),
        s.toggles.map((x) => `${x.to} ${Math.round(x.allMs)}`).join(', '),
      ]),
    ),
  );
  return out.join('\n');
}
