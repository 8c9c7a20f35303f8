/** The section of RESULTS.md for case 6: router overhead. */
import type { RouterOverhead } from '../../cases/router-overhead.js';
import { fixed, int, ratio, table } from '../../lib/format.js';

export function routerSection(x: RouterOverhead): string {
  const out = ['## 6. Router overhead', ''];
  out.push(
    `In a child process started with \`--expose-gc\`: the read-new flag bootstrapped into an unleash-client (no server, \`refreshInterval: 0\`, \`disableMetrics\`), the same flag and context for every variant, alternating rounds, median round. "source" is the flag through ${x.sourceKind}; "router" is the core Router in phase read-new over that source, \`readColumn(context)\` (decide + the read counter heartbeats report).`,
  );
  out.push('');
  out.push(
    table(
      ['variant', 'ns per call', 'vs bare'],
      [
        ['bare `unleash.isEnabled(flag, context)`', fixed(x.nsPerCall.bare, 0), '1.00×'],
        [`${x.sourceKind}.isEnabled`, fixed(x.nsPerCall.source, 0), ratio(x.nsPerCall.source / x.nsPerCall.bare)],
        ['router `readColumn(context)`', fixed(x.nsPerCall.router, 0), ratio(x.nsPerCall.router / x.nsPerCall.bare)],
      ],
    ),
  );
  out.push(
    '',
    `Heap after a full GC, before and after ${int(x.heapCalls)} calls: router ${int(x.heapGrowth.router)} bytes, bare client ${int(x.heapGrowth.bare)} bytes.`,
  );
  return out.join('\n');
}
