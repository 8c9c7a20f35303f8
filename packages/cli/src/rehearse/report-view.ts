import { formatDuration, formatNumber, type Output } from '../output.js';
import type { Latency, RehearsalReport } from './report.js';

function lat(l: Latency): string {
  if (l.requests === 0) return 'no requests';
  const ratio = l.p99Ratio === null ? '' : ` (${l.p99Ratio}× baseline)`;
  const errors = l.errors === 0 ? '0 errors' : `${l.errors} errors (${l.firstError})`;
  return `p50 ${l.p50Ms} ms · p99 ${l.p99Ms} ms${ratio} · ${formatNumber(l.requests)} requests · ${errors}`;
}

/** The report for a person: the copy, the preflight, each phase's statements and latencies, the projection, the verdict. */
export function printRehearsal(out: Output, r: RehearsalReport): void {
  const { c } = out;
  out.line(`${c.bold(`rehearse ${r.migrationId}`)}  ${r.table}`);
  out.line(
    `source  ~${formatNumber(r.source.rowsEstimate)} rows, ${formatNumber(Math.round(r.source.totalBytes / 1024 / 1024))} MB · traffic ${r.traffic.readsPerS} reads/s, ${r.traffic.writesPerS} writes/s: ${r.source.rates}`,
  );
  out.line(
    `copy    ${formatNumber(r.copy.sampledRows)} rows sampled (${r.copy.method}), scaled to ${formatNumber(r.copy.rows)} (${r.source.rowsChosen})${r.copy.scaleNote ? ` — ${r.copy.scaleNote}` : ''}; ${r.copy.statements.length} statements in ${formatDuration(r.copy.durationMs / 1000)}`,
  );
  for (const p of r.copy.parents)
    out.line(c.dim(`        ${p.table}: ${formatNumber(p.rows)} referenced rows (${p.constraint})`));
  for (const s of r.copy.skipped) out.line(c.yellow(`        not copied: ${s.what} — ${s.why}`));
  out.line(
    `preflight  ${formatNumber(r.preflight.rowsChecked)} rows: ${r.preflight.failures === 0 ? c.green('0 cannot be derived') : c.red(`${r.preflight.failures} cannot be derived`)}${r.preflight.roundTripMismatches ? `, ${r.preflight.roundTripMismatches} do not round-trip (warning)` : ''}`,
  );
  for (const f of r.preflight.failedRows.slice(0, 5)) out.line(c.red(`  fails  ${JSON.stringify(f)}`));
  out.line(`baseline   ${lat(r.baseline)}`);
  for (const p of r.phases) {
    out.line('');
    out.line(`${c.bold(c.cyan(p.phase))}  ${formatNumber(p.durationMs)} ms · ${lat(p.latency)}`);
    for (const s of p.statements) {
      const lock = s.lock === 'ACCESS EXCLUSIVE' ? c.red(s.lock) : s.blocksWrites ? c.yellow(s.lock) : c.green(s.lock);
      out.line(
        `  ${lock} held ${s.heldMs} ms, waited ${s.lockWaitMs} ms${s.attempts > 1 ? ` (${s.attempts} attempts)` : ''}${s.step ? ` [${s.step}]` : ''}`,
      );
      out.line(`    ${c.dim(s.sql.split('\n')[0]!.slice(0, 160))}`);
    }
    if (p.phase === 'backfill' && r.backfill)
      out.line(
        `  ${formatNumber(r.backfill.rows)} rows walked (${formatNumber(r.backfill.updated)} updated) in ${formatNumber(r.backfill.durationMs)} ms: ${c.bold(`${formatNumber(r.backfill.rowsPerS)} rows/s`)}`,
      );
  }
  out.line('');
  if (r.projection) {
    out.line(
      `${c.bold('projection')}  backfill of ${formatNumber(r.projection.sourceRows)} rows at the source's size: ${c.bold(formatDuration(r.projection.seconds))}`,
    );
    out.line(c.dim(`  ${r.projection.method}`));
    for (const a of r.projection.assumptions) out.line(c.dim(`  assumes ${a}`));
  }
  if (r.stoppedBy) out.line(c.red(`stopped: ${r.stoppedBy}`));
  for (const t of r.thresholds)
    out.line(
      `${t.crossed ? c.red('crossed') : c.green('ok')}  ${t.name} ${t.limit}${t.unit === '×' ? '' : ` ${t.unit}`}: ${t.value === null ? 'not measured' : `${t.value}${t.unit === '×' ? '×' : ` ${t.unit}`}`}`,
    );
  out.line(r.ok ? c.green('rehearsal passed') : c.red('rehearsal failed'));
}
