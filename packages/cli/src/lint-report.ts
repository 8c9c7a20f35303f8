import type { Finding, LintResult } from '@phaseflag/lint';
import type { Output } from './output.js';

export type Reporter = 'text' | 'json' | 'github';

export function counts(result: LintResult): { errors: number; warnings: number } {
  const errors = result.findings.filter((f) => f.level === 'error').length;
  return { errors, warnings: result.findings.length - errors };
}

/** The result as one JSON document (the `--json` shape). */
export function jsonReport(result: LintResult): Record<string, unknown> {
  return { ...counts(result), files: result.files, statements: result.statements, findings: result.findings };
}

/** What a person reads: each finding at file:line:column, the hazard, the safe way, the fix to paste. */
export function printText(out: Output, result: LintResult): void {
  const { c } = out;
  for (const f of result.findings) {
    const level = f.level === 'error' ? c.red('error') : c.yellow('warning');
    out.line(`${c.bold(`${f.file}:${f.line}:${f.column}`)}  ${level}  ${c.cyan(f.rule)}`);
    out.line(`  ${firstLine(f.statement)}`);
    out.line(`  ${f.message}`);
    out.line(`  ${c.green(f.safe)}`);
    if (f.fix) {
      out.line(c.dim('  the phaseflag way (paste into phaseflag.config.ts):'));
      for (const line of f.fix.split('\n')) out.line(`    ${line}`);
    }
    out.line();
  }
  const { errors, warnings } = counts(result);
  const where = `${result.files} file${result.files === 1 ? '' : 's'}, ${result.statements} statement${result.statements === 1 ? '' : 's'}`;
  out.line(
    errors + warnings === 0
      ? c.green(`No unsafe DDL found (${where}).`)
      : `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} (${where}).`,
  );
}

function firstLine(sql: string): string {
  const line = sql.split('\n')[0] ?? '';
  return line.length > 110 || sql.includes('\n') ? `${line.slice(0, 110)} …` : line;
}

/** GitHub Actions workflow commands: `%`, CR and LF escaped in the text, `:` and `,` as well in properties. */
export const escapeData = (s: string) => s.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
export const escapeProperty = (s: string) => escapeData(s).replaceAll(':', '%3A').replaceAll(',', '%2C');

/** One `::error file=…,line=…,col=…,title=…::…` annotation per finding (`::warning` for warnings). */
export function githubAnnotation(f: Finding): string {
  const props = `file=${escapeProperty(f.file)},line=${f.line},col=${f.column},title=${escapeProperty(`phaseflag lint: ${f.rule}`)}`;
  return `::${f.level} ${props}::${escapeData(`${f.message}\n${f.safe}${f.fix ? `\n\n${f.fix}` : ''}`)}`;
}
