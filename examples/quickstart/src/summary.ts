/**
 * The automatic demo's final report: what the load saw, what the database holds, how long each phase took, and
 * the trace as a timeline. `verdict` decides the exit code.
 */
import type { Migration } from '@phaseflag/core';
import type { LoadReport } from '@phaseflag/example-orders-service';
import { bold, green, red, type Reporter } from './reporter.js';
import type { Stack } from './stack.js';
import { formatDuration, renderTimeline } from './timeline.js';
import type { WalkResult } from './walk.js';
import type { FinalState } from './final-state.js';

export function verdict(
  load: LoadReport,
  walked: WalkResult,
  final: FinalState,
  seeded: number,
): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  if (load.requests === 0) problems.push('the load sent no request');
  if (load.failed > 0) problems.push(`${load.failed} requests failed`);
  if (walked.rowsCorrect !== walked.rowsTotal)
    problems.push(`${walked.rowsTotal - walked.rowsCorrect} rows differ from the backfill expression`);
  if (walked.rowsTotal < seeded) problems.push(`only ${walked.rowsTotal} rows of the ${seeded} seeded`);
  if (!final.newColumnNotNull) problems.push('the new column is not NOT NULL after contract');
  if (!walked.verify || walked.verify.mismatches > 0)
    problems.push(
      `phaseflag's verify ${walked.verify ? `found ${walked.verify.mismatches} mismatches` : 'recorded no result'}`,
    );
  return { ok: problems.length === 0, problems };
}

export function printSummary(
  say: (line: string) => void,
  input: {
    migration: Migration;
    load: LoadReport;
    walked: WalkResult;
    final: FinalState;
    reporter: Reporter;
    stack: Stack;
    ok: boolean;
    problems: string[];
  },
): void {
  const { migration: m, load, walked, final, reporter, stack } = input;
  const n = (v: number) => v.toLocaleString('en-US');
  say('');
  say(bold('summary'));
  say(
    `  requests served   ${n(load.requests)} (${n(load.reads)} reads, ${n(load.writes)} writes) across ${stack.services.length} instances`,
  );
  say(
    `  failed requests   ${load.failed === 0 ? green('0') : red(n(load.failed))}${load.errorSamples.length ? `  e.g. ${load.errorSamples.slice(0, 3).join('; ')}` : ''}`,
  );
  say(
    `  rows verified     ${n(walked.rowsCorrect)} of ${n(walked.rowsTotal)} orders hold ${m.newColumn.name} = ${m.backfill} (checked in the database before contract)`,
  );
  say(
    `  phaseflag         backfilled ${n(walked.rowsBackfilled)} rows; its verify checked ${walked.verify ? `${n(walked.verify.rowsChecked)} rows, ${n(walked.verify.mismatches)} mismatches` : 'nothing (no result recorded)'}`,
  );
  say(
    `  after contract    ${n(final.rows)} orders, ${m.newColumn.name} NOT NULL: ${final.newColumnNotNull ? 'yes' : 'NO'}, ${m.oldColumn} ${final.oldColumnExists ? 'kept' : 'dropped'}`,
  );
  say(
    `  latency           p50 ${load.latencyMs.p50.toFixed(1)} ms, p99 ${load.latencyMs.p99.toFixed(1)} ms, max ${load.latencyMs.max.toFixed(1)} ms`,
  );

  say('');
  say(bold('time per phase') + ' (from the first instance reporting it to the first reporting the next)');
  const arrivals = reporter.arrivals.filter((a) => a.migration === m.id);
  arrivals.forEach((a, i) => {
    const next = arrivals[i + 1];
    const spread = a.lastAt - a.firstAt;
    say(
      `  ${a.phase.padEnd(12)} ${next ? formatDuration(next.firstAt - a.firstAt).padStart(9) : '    final'}   every instance within ${formatDuration(spread)}`,
    );
  });
  say(bold('operator steps') + ' (Admin API call → every instance applied it → settled)');
  for (const s of walked.steps)
    say(
      `  ${s.label.padEnd(38)} ${formatDuration(s.appliedMs).padStart(9)} ${s.settledMs - s.appliedMs > 50 ? `→ ${formatDuration(s.settledMs)}` : ''}`,
    );

  const spans = stack.receiver.spans();
  const stats = stack.receiver.stats();
  say('');
  say(
    `${bold('trace')} (${n(spans.length)} phaseflag spans of ${n(stats.spansSeen)} the services exported over OTLP${stack.receiver.forwardTo ? `, all forwarded to ${stack.receiver.forwardTo}` : ''})`,
  );
  const lines = renderTimeline(spans, {
    migrationId: m.id,
    width: Math.max(20, Math.min(60, (process.stdout.columns ?? 120) - 80)),
  });
  if (lines.length === 0)
    say(
      stats.undecodable > 0
        ? '  (the services sent protobuf: set OTEL_EXPORTER_OTLP_PROTOCOL=http/json to see the trace here)'
        : '  (no spans arrived)',
    );
  for (const line of lines) say(line);
  if (stack.receiver.forwardTo && stats.forwardFailed + stats.forwardDropped > 0) {
    say(
      `  forwarding: ${stats.forwardFailed} failed, ${stats.forwardDropped} dropped${stats.lastForwardError ? ` (${stats.lastForwardError})` : ''}`,
    );
  }

  say('');
  if (input.ok) say(green(bold('migration complete: every row correct, no failed request')));
  else say(red(bold(`migration NOT correct: ${input.problems.join('; ')}`)));
}
