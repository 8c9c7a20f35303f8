/** The section of RESULTS.md for case 3: write amplification during dual-write. */
import type { WriteAmplificationCase } from '../../cases/write-amplification.js';
import { fixed, int, ratio, rowsLabel, table } from '../../lib/format.js';

export function writeSection(w: WriteAmplificationCase): string {
  const out = ['## 3. Write amplification during dual-write', ''];
  out.push(
    `Two identical ${rowsLabel(w.rows)}-row tables, one before expand and one in dual-write, written alternately in ${w.rounds} rounds of ${w.perRound} single-row statements per variant on one connection (random rows, the same ones for both); each figure is the median round's mean latency as the application sees it. "router" is the knex statement built with \`router.row(values)\` (while the sync trigger is live it leaves the derived column to the trigger, which records a value it cannot derive instead of failing the write) against the plain values; "trigger" is the same plain SQL on both tables, the sync trigger filling the new column.`,
  );
  out.push('');
  out.push(
    table(
      ['change', 'statement', 'path', 'before expand', 'dual-write', 'ratio'],
      w.statements.map((s) => [
        s.change,
        s.op,
        s.path,
        `${fixed(s.beforeUs, 0)} µs`,
        `${fixed(s.dualWriteUs, 0)} µs`,
        ratio(s.ratio),
      ]),
    ),
  );
  out.push(
    '',
    'Server-side cost per row of the same writes 10k rows at a time (`EXPLAIN ANALYZE`, `TIMING OFF`, rolled back), where no round trip dilutes the trigger; "UPDATE of note" writes a column neither expression reads:',
    '',
  );
  const na = (v: number | undefined, f: (v: number) => string) => (v === undefined ? 'n/a' : f(v));
  out.push(
    table(
      [
        'change',
        'statement',
        'before expand (no trigger)',
        'dual-write',
        'ratio',
        'trigger without exception blocks',
        'exception blocks cost',
        'floor: function that only returns NEW',
      ],
      w.bulk.map((x) => [
        x.change,
        x.op === 'UPDATE unrelated' ? 'UPDATE of note' : x.op,
        `${fixed(x.beforeUsPerRow, 2)} µs/row`,
        `${fixed(x.dualWriteUsPerRow, 2)} µs/row`,
        ratio(x.ratio),
        na(x.unguardedUsPerRow, (v) => `${fixed(v, 2)} µs/row`),
        na(x.unguardedUsPerRow, (v) => `${fixed(x.dualWriteUsPerRow - v, 2)} µs/row`),
        na(x.floorUsPerRow, (v) => `${fixed(v, 2)} µs/row (${ratio(v / x.beforeUsPerRow)})`),
      ]),
    ),
  );
  out.push(
    '',
    "The sync trigger derives each value inside a PL/pgSQL exception block (a subtransaction) so that a row the expression cannot derive is recorded instead of failing the application's write; the next two columns are the same trigger without those blocks, and the difference per row. The last is the same two triggers (BEFORE INSERT, and BEFORE UPDATE with the same WHEN clause) calling a function that only returns NEW: what any PL/pgSQL BEFORE row trigger costs before it does any work. On an UPDATE of `note` the WHEN clause is false and no function is called; what remains is the row lock Postgres takes for every BEFORE UPDATE row trigger before it evaluates WHEN.",
  );
  if (w.loop?.length) {
    out.push(
      '',
      `Single-row UPDATEs one after the other in a server-side loop (${int(w.loop[0]!.statements)} statements in one \`DO\` block, rolled back): each statement's cost without the round trip, on an UPDATE of the old column and on one of \`note\`, which neither expression reads (the UPDATE trigger's WHEN clause is false for it: no function call):`,
      '',
    );
    out.push(
      table(
        ['change', 'UPDATE of', 'before expand (no trigger)', 'dual-write', 'ratio'],
        w.loop.map((x) => [
          x.change,
          x.column === 'old' ? 'the old column' : 'an unrelated column',
          `${fixed(x.beforeUs, 1)} µs`,
          `${fixed(x.dualWriteUs, 1)} µs`,
          ratio(x.ratio),
        ]),
      ),
    );
  }
  return out.join('\n');
}
