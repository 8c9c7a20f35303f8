import type { DriftReport, StoreDriftReport } from '@phaseflag/postgres';
import { ADVANCING_STEPS, driftRefusal } from '@phaseflag/postgres/internal';
import type { Output } from './output.js';

/** What a controller would do once drift counts: a step that advances a drifted migration is refused (PF_DRIFT). */
export function driftHolds<N extends { kind: 'act' | 'refuse' | 'none'; action: string | null }>(
  next: N | null,
  drift: DriftReport | null,
): N | { kind: 'refuse'; action: string | null; why: string; hint: string } | null {
  if (next?.kind !== 'act' || !drift?.blocking || !ADVANCING_STEPS.has(next.action ?? '')) return next;
  const { reason, hint } = driftRefusal(drift);
  return { kind: 'refuse', action: next.action, why: `PF_DRIFT: ${reason}`, hint };
}

/** What `status` shows of a migration's drift (and `--json` carries): the report, with dates as ISO text. */
export interface DriftJson {
  drifted: boolean;
  blocking: boolean;
  findings: DriftReport['findings'];
  recordedDdl: Array<Omit<DriftReport['recordedDdl'][number], 'at' | 'acknowledgedAt'> & { at: string }>;
  watch: DriftReport['watch'];
}

export function driftJson(r: DriftReport): DriftJson {
  return {
    drifted: r.drifted,
    blocking: r.blocking,
    findings: r.findings,
    recordedDdl: r.recordedDdl.map(({ at, acknowledgedAt: _, ...d }) => ({ ...d, at: new Date(at).toISOString() })),
    watch: r.watch,
  };
}

/** The `drift` row of `status`: a word when the table matches, else each difference in a line. */
export function driftStatusText(out: Output, d: DriftJson): string {
  const { c } = out;
  const lines: string[] = [];
  if (d.findings.length === 0) lines.push(c.green('matches the catalog'));
  for (const f of d.findings)
    lines.push(
      `${f.blocking ? c.red('✗') : c.yellow('!')} ${f.object} "${f.name}": ${f.actual} (expected ${f.expected})`,
    );
  if (d.recordedDdl.length > 0)
    lines.push(c.yellow(`${d.recordedDdl.length} DDL statement(s) phaseflag did not run, not acknowledged`));
  if (d.blocking)
    lines.push(c.dim('the controller refuses to advance (PF_DRIFT); `phaseflag drift <id>` shows the repairs'));
  if (!d.watch.active) lines.push(c.dim(`DDL not watched: ${d.watch.reason}`));
  return lines.join('\n');
}

/** `phaseflag drift`: each migration, each difference with its repair, the recorded DDL, and the watch. */
export function renderDrift(out: Output, report: StoreDriftReport): void {
  const { c } = out;
  report.migrations.forEach((r, i) => {
    if (i > 0) out.line('');
    const summary =
      r.findings.length === 0 ? c.green('matches the catalog') : c.red(`${r.findings.length} difference(s)`);
    out.line(`${c.bold(r.migrationId)}  ${r.table} (phase ${c.cyan(r.phase)}): ${summary}`);
    for (const f of r.findings) {
      out.line(
        `  ${f.blocking ? c.red('✗') : c.yellow('!')} ${f.object} "${f.name}"${f.blocking ? '' : c.dim(' (does not block)')}`,
      );
      out.line(`      expected: ${f.expected}`);
      out.line(`      found:    ${f.actual}`);
      if (f.repair.command) out.line(`      repair:   ${c.cyan(f.repair.command)}`);
      if (f.repair.sql) {
        out.line(`      ${f.repair.command ? 'first, SQL' : 'repair (SQL)'}:`);
        for (const l of f.repair.sql.split('\n')) out.line(`        ${l}`);
      }
      if (f.repair.note) out.line(c.dim(`      ${f.repair.note}`));
    }
    if (r.recordedDdl.length > 0) {
      out.line(c.yellow(`  DDL phaseflag did not run on ${r.table}, not acknowledged:`));
      for (const d of r.recordedDdl)
        out.line(
          `    ${new Date(d.at).toISOString()}  ${d.role}  ${d.commandTag}: ${oneLine(d.statement ?? d.objectIdentity ?? '')}`,
        );
      out.line(c.dim(`  \`phaseflag drift ${r.migrationId} --ack\` acknowledges it once looked at.`));
    }
  });
  out.line('');
  out.line(
    report.watch.active
      ? c.dim(`DDL on these tables is recorded as it happens (event triggers of state schema "${report.stateSchema}").`)
      : c.yellow(`DDL is not being watched: ${report.watch.reason}.`),
  );
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 199)}…` : flat;
}
