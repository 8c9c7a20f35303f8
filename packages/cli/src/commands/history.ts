import type { Command } from 'commander';
import type { MigrationEvent } from '@phaseflag/postgres';
import { table, type Output } from '../output.js';
import { action, integerOption } from '../program.js';
import { openSession } from '../runtime.js';

export function registerHistory(program: Command): void {
  program
    .command('history')
    .argument('<id>', 'migration id (from the config, or one only the state store holds)')
    .description('the event log of a migration, oldest first: transitions, refusals, DDL, backfill, verify (read-only)')
    .option('--limit <n>', 'only the latest n events', '10000')
    .action(
      action(async (out, opts, id: string) => {
        const limit = integerOption(opts.limit, '--limit', 1, 1_000_000, 'events')!;
        // Read-only, like status: nothing is installed or registered.
        const session = await openSession(opts, out, { install: false });
        try {
          const events = await session.pf.history(id, { limit });
          render(out, id, events);
          out.result({ migrationId: id, events });
        } finally {
          await session.close();
        }
      }),
    );
}

function render(out: Output, id: string, events: MigrationEvent[]): void {
  const { c } = out;
  out.line(`${c.bold(id)}: ${events.length} event${events.length === 1 ? '' : 's'}`);
  if (events.length === 0) return;
  const t = table(out, { head: ['at', 'kind', 'action', 'phase', 'actor', 'reason'], wordWrap: true });
  for (const e of events) {
    const phase = e.fromPhase || e.toPhase ? `${e.fromPhase ?? '-'} → ${e.toPhase ?? '-'}` : '-';
    const kind = e.kind === 'refused' ? c.red(e.kind) : e.kind === 'transition' ? c.cyan(e.kind) : e.kind;
    t.push([new Date(e.at).toISOString(), kind, e.action ?? '-', phase, e.actor ?? '-', e.reason ?? '']);
  }
  out.line(t.toString());
}
