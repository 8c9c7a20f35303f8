import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { LintResult } from '@phaseflag/lint';
import type { StoreDriftReport } from '@phaseflag/postgres';
import { driftJson, renderDrift } from '../drift-view.js';
import { escapeData, escapeProperty, githubAnnotation, jsonReport, printText } from '../lint-report.js';
import { formatDuration, type Output } from '../output.js';
import type { PlanCheck } from './plan-all.js';

/** Everything `phaseflag check` found, in the order it looked. */
export interface CheckReport {
  /** The files linted (absolute paths), after --since narrowed them. */
  files: string[];
  /** `given` (--database-url, DATABASE_URL or the config), `embedded, built from …` (--schema), or `none`. */
  database: string;
  /** The config file the declared migrations came from, if any. */
  configFile: string | null;
  lint: LintResult;
  plans: PlanCheck[];
  /** Null when there was no database to compare with (none given, or one built from --schema). */
  drift: StoreDriftReport | null;
}

export interface CheckVerdict {
  ok: boolean;
  lintErrors: number;
  lintWarnings: number;
  refusedPlans: number;
  drifted: number;
}

export function verdict(report: CheckReport): CheckVerdict {
  const lintErrors = report.lint.findings.filter((f) => f.level === 'error').length;
  const refusedPlans = report.plans.filter((p) => p.status === 'refused').length;
  const drifted = report.drift?.migrations.filter((m) => m.drifted).length ?? 0;
  return {
    ok: lintErrors === 0 && refusedPlans === 0 && drifted === 0,
    lintErrors,
    lintWarnings: report.lint.findings.length - lintErrors,
    refusedPlans,
    drifted,
  };
}

/** The `--json` document: the verdict, then each part in the shape its own command prints. */
export function checkJson(report: CheckReport): Record<string, unknown> {
  return {
    ...verdict(report),
    database: report.database,
    files: report.files,
    lint: jsonReport(report.lint),
    plans: report.plans,
    drift: report.drift && {
      stateSchema: report.drift.stateSchema,
      stateStore: report.drift.stateStore,
      watch: report.drift.watch,
      migrations: report.drift.migrations.map((r) => ({
        migrationId: r.migrationId,
        phase: r.phase,
        table: r.table,
        ...driftJson(r),
      })),
    },
  };
}

export function printCheck(out: Output, report: CheckReport): void {
  const { c } = out;
  out.line(c.bold(c.cyan('lint')) + c.dim(`  ${report.files.length} file(s)`));
  if (report.files.length === 0) out.line(c.dim('  no migration files to lint'));
  else printText(out, report.lint);
  out.line('');
  out.line(c.bold(c.cyan('plan')) + c.dim(`  database: ${report.database}`));
  if (report.plans.length === 0) out.line(c.dim('  no declared migrations'));
  for (const p of report.plans) {
    const head = `  ${c.bold(p.id)}  ${p.table}${p.phase ? ` (phase ${p.phase})` : ''}: `;
    if (p.status === 'planned')
      out.line(
        `${head}${c.green('plans')} — ${p.statements} statement(s), strongest lock ${p.strongestLock}, application queries wait ≤ ${formatDuration((p.maxBlockingLockWaitMs ?? 0) / 1000)} in all behind its DDL (every lock_timeout attempt)`,
      );
    else if (p.status === 'skipped') out.line(`${head}${c.dim(p.message ?? 'skipped')}`);
    else {
      out.line(`${head}${c.red(`${p.code}`)} ${p.message}`);
      if (p.hint) out.line(c.dim(`    hint: ${p.hint}`));
    }
  }
  out.line('');
  out.line(c.bold(c.cyan('drift')));
  if (!report.drift)
    out.line(
      c.dim(`  not compared: ${report.database === 'none' ? 'no database given' : 'only a real database drifts'}`),
    );
  else if (report.drift.migrations.length === 0) out.line(c.dim('  no declared migrations'));
  else renderDrift(out, report.drift);
  const v = verdict(report);
  out.line('');
  out.line(
    v.ok
      ? c.green(`check passed${v.lintWarnings > 0 ? ` (${v.lintWarnings} lint warning(s))` : ''}`)
      : c.red(
          `check failed: ${v.lintErrors} lint error(s), ${v.refusedPlans} migration(s) the database refuses, ${v.drifted} drifted`,
        ),
  );
}

/**
 * GitHub annotations: lint findings at their file and line; a refused plan or a drifted migration at the line of
 * its id in the config file (the first line that names it), so the pull request shows it where it is declared.
 */
export function checkAnnotations(report: CheckReport): string[] {
  const lines = report.lint.findings.map(githubAnnotation);
  const at = declarationLines(report.configFile);
  const shown = report.configFile && relative(process.cwd(), report.configFile);
  const where = (id: string) => (shown ? `file=${escapeProperty(shown)},line=${at(id)},` : '');
  for (const p of report.plans.filter((x) => x.status === 'refused'))
    lines.push(
      `::error ${where(p.id)}title=${escapeProperty(`phaseflag check: ${p.code ?? 'refused'}`)}::${escapeData(`${p.id}: ${p.message ?? ''}${p.hint ? `\n${p.hint}` : ''}`)}`,
    );
  for (const m of report.drift?.migrations.filter((x) => x.drifted) ?? []) {
    const text = [
      `${m.migrationId} (${m.table}, phase ${m.phase}) drifted:`,
      ...m.findings.map((f) => `${f.object} "${f.name}": expected ${f.expected}, found ${f.actual}`),
      ...(m.recordedDdl.length > 0 ? [`${m.recordedDdl.length} DDL statement(s) phaseflag did not run`] : []),
      `phaseflag drift ${m.migrationId} shows the repairs.`,
    ].join('\n');
    lines.push(
      `::error ${where(m.migrationId)}title=${escapeProperty('phaseflag check: PF_DRIFT')}::${escapeData(text)}`,
    );
  }
  return lines;
}

function declarationLines(file: string | null): (id: string) => number {
  let text: string[] = [];
  try {
    if (file) text = readFileSync(file, 'utf8').split('\n');
  } catch {
    text = [];
  }
  return (id) => {
    const i = text.findIndex((l) => l.includes(`'${id}'`) || l.includes(`"${id}"`) || l.includes(`\`${id}\``));
    return i === -1 ? 1 : i + 1;
  };
}
