/**
 * bench/LINT-RESULTS.md, case 10's own results file: phaseflag lint against squawk on the corpus, per entry and per
 * rule, every disagreement with its explanation, and the targets of issue 14.
 */
import type { LintCase } from '../cases/lint.js';
import type { JudgedEntry, ToolFinding } from '../cases/lint-judge.js';
import { int, mb, secs, table, verdict } from '../lib/format.js';
import type { Target } from './targets/target.js';

export interface LintRun {
  command: string;
  startedAt: string;
  quick: boolean;
  lint?: LintCase;
  /** Why the case did not run, when it failed. */
  error?: string;
}

export function lintTargets(l: LintCase | undefined): Target[] {
  const id = '10';
  if (!l)
    return [
      {
        id,
        what: 'phaseflag lint against squawk',
        figure: 'not measured',
        target: '',
        pass: null,
        limit: 'case failed',
      },
    ];
  const t = l.tally;
  const uncovered = l.coverage.filter((c) => c.missing.length);
  const names = (xs: JudgedEntry[]) => xs.map((j) => j.entry.id).join(', ');
  return [
    {
      id,
      what: 'every real hazard squawk catches, phaseflag catches',
      figure: `phaseflag ${t.phaseflagCaught} of ${t.unsafe} unsafe entries, squawk ${t.squawkCaught}; caught by squawk and missed by phaseflag: ${t.missedBySquawkCatch.length}`,
      target: '0 missed that squawk catches',
      pass: t.missedBySquawkCatch.length === 0,
      limit: t.missedBySquawkCatch.length ? `missed: ${names(t.missedBySquawkCatch)}` : '',
    },
    {
      id,
      what: 'false findings on the safe twins',
      figure: `phaseflag ${t.phaseflagFalse} of ${t.safe} safe entries, squawk ${t.squawkFalse}`,
      target: 'fewer than squawk',
      pass: t.phaseflagFalse < t.squawkFalse,
      limit: t.phaseflagFalse ? `phaseflag flags: ${names(falseOnes(l.judged))}` : '',
    },
    {
      id,
      what: 'the catalog-aware cases (the same blocking statement on a large table, a 100-row table, a table created in the same file)',
      figure: `${t.catalog.length - t.catalogWrong.length} of ${t.catalog.length} judged right by phaseflag (large: flagged with the table's size; small and same-file: no finding); squawk ${t.catalog.filter((j) => j.squawkRight).length}`,
      target: 'all right',
      pass: t.catalogWrong.length === 0 && t.catalog.length > 0,
      limit: t.catalogWrong.length ? `wrong: ${names(t.catalogWrong)}` : '',
    },
    {
      id,
      what: "the corpus: statements, every rule's unsafe form and safe twin in SQL and knex",
      figure: `${t.entries} entries (${l.statements} statements parsed); ${l.coverage.length - uncovered.length} of ${l.coverage.length} rules covered in both forms`,
      target: '≥ 80 statements, every rule covered',
      pass: t.entries >= 80 && uncovered.length === 0,
      limit: uncovered.map((c) => `${c.rule}: no ${c.missing.join(', ')}`).join('; '),
    },
    {
      id,
      what: 'every disagreement explained',
      figure: `${t.disagreements.length} disagreements, ${t.unexplained.length} unexplained`,
      target: '0 unexplained',
      pass: t.unexplained.length === 0,
      limit: t.unexplained.length ? `unexplained: ${names(t.unexplained)}` : '',
    },
  ];
}

const falseOnes = (judged: readonly JudgedEntry[]) =>
  judged.filter((j) => j.entry.verdict === 'safe' && !j.phaseflagRight);

export function renderLintResults(r: LintRun): string {
  const out: string[] = ['# phaseflag lint against squawk (benchmark case 10)', ''];
  out.push(
    `Written by \`${r.command}\` (bench/run.ts, case 10) on ${r.startedAt}. Do not edit by hand: rerun \`npm run bench -- --only 10\`.`,
  );
  if (r.quick)
    out.push(
      '',
      '> **Quick smoke run** (`--quick`): the same corpus and tables; run without `--quick` for the committed file.',
    );
  const l = r.lint;
  if (!l) {
    out.push('', `**The case failed**: ${r.error ?? 'unknown error'}`);
    return `${out.join('\n')}\n`;
  }
  const targets = lintTargets(l);
  const t = l.tally;
  out.push(
    '',
    `**${targets.filter((x) => x.pass).length} of ${targets.length} targets pass.** phaseflag lint ${l.phaseflagVersion} caught ${t.phaseflagCaught} of ${t.unsafe} unsafe entries (squawk ${l.squawkVersion}: ${t.squawkCaught}); on the ${t.safe} safe twins it made ${t.phaseflagFalse} false findings (squawk: ${t.squawkFalse}). The tools agree on ${t.agreements} of ${t.entries} entries; ${t.disagreements.length} disagreements, ${t.unexplained.length} unexplained.`,
  );
  out.push('', '## Targets', '');
  out.push(
    table(
      ['#', 'what', 'figure', 'target', 'result', 'what limits it'],
      targets.map((x) => [x.id, x.what, x.figure, x.target, verdict(x.pass), x.limit || '—']),
    ),
  );
  out.push('', '## How it ran', '');
  out.push(
    [
      `- **Corpus**: \`bench/lint-corpus/\` — ${t.entries} migration files (\`sql/\`, \`knex/\`, \`catalog/\`), each with its hazard (or none), unsafe or safe, the context it needs, the PostgreSQL version and, where the tools are expected to disagree, why. A file is one entry: the statements beside the one it is about (a same-file CREATE TABLE, a SET lock_timeout) are context written to draw no finding.`,
      `- **squawk** ${l.squawkVersion}: the platform binary that \`squawk-cli\` (bench/package.json) installs, \`--reporter json --pg-version N\`, one process per group of options, findings mapped back to each file. Knex entries reach squawk as the SQL phaseflag's knex capture produced for their \`up\`, with \`--assume-in-transaction\` unless the file sets \`config = { transaction: false }\` (squawk's line numbers in a knex entry are lines of that SQL; phaseflag's, lines of the migration file).`,
      `- **phaseflag lint** ${l.phaseflagVersion}: \`lintFiles([file], { pgVersion })\` on the same files (knex files read as knex migrations). The catalog-aware entries also get \`catalog\`, read from the bench's database with \`describeTables\` (@phaseflag/postgres).`,
      `- **Timeout rules**: require-lock-timeout is judged on its own entries only; elsewhere both tools run with it excluded (squawk with require-lock-timeout and require-statement-timeout, the pair its config calls require-timeout-settings), so that each entry measures the one hazard it is about. squawk's require-statement-timeout has no phaseflag rule: listed, not counted.`,
      `- **Judging**: an unsafe entry is caught when the tool reports its hazard (squawk's rule names mapped to phaseflag's through \`RULES[].squawk\`); a safe twin draws a false finding when the tool reports any hazard of the issue's list. squawk's other rules (prefer-robust-stmts, prefer-text-field, …) are listed but not counted. A disagreement is explained when the corpus says why and phaseflag is the tool that is right.`,
      `- **Catalog tables** (built in ${secs(l.buildSeconds)}): ${l.tables.map((x) => `\`${x.name}\` ${int(x.rows)} rows (estimate ${int(x.rowsEstimate)}, ${mb(x.totalBytes)})`).join(', ')}; \`promo_codes\` is created in the entries' own files.`,
      `- **Time over the corpus**: phaseflag lint ${secs(l.phaseflagSeconds)} (one call per file, in this process); squawk ${secs(l.squawkSeconds)} (one process per group).`,
    ].join('\n'),
  );
  out.push('', '## By rule', '');
  out.push(
    table(
      [
        'rule',
        'level',
        "squawk's name",
        'unsafe: phaseflag / squawk caught',
        'safe: phaseflag / squawk false findings',
      ],
      [...l.rules.map((r) => r.name), 'none'].map((name) => {
        const rows = l.judged.filter((j) => j.entry.rule === name);
        const unsafe = rows.filter((j) => j.entry.verdict === 'unsafe');
        const safe = rows.filter((j) => j.entry.verdict === 'safe');
        const rule = l.rules.find((r) => r.name === name);
        return [
          name,
          rule?.level ?? '—',
          rule?.squawk ?? '—',
          unsafe.length
            ? `${unsafe.filter((j) => j.phaseflagRight).length} / ${unsafe.filter((j) => j.squawkRight).length} of ${unsafe.length}`
            : '—',
          `${safe.filter((j) => !j.phaseflagRight).length} / ${safe.filter((j) => !j.squawkRight).length} of ${safe.length}`,
        ];
      }),
    ),
  );
  out.push('', '## Disagreements', '');
  out.push(
    t.disagreements.length
      ? table(
          ['entry', 'verdict', 'phaseflag', 'squawk', 'explanation'],
          t.disagreements.map((j) => [
            j.entry.id,
            j.entry.verdict,
            said(j.phaseflag),
            said(j.squawk),
            j.explanation ??
              `**UNEXPLAINED**: ${j.phaseflagRight ? 'the corpus gives no reason' : 'phaseflag is the one that is wrong'}`,
          ]),
        )
      : 'None.',
  );
  out.push('', '## Every entry', '');
  out.push(
    table(
      ['entry', 'hazard', 'verdict', 'context', 'PG', 'phaseflag said', 'squawk said', 'agree'],
      l.judged.map((j) => [
        j.entry.id,
        j.entry.rule,
        j.entry.verdict,
        j.entry.context,
        String(j.entry.pgVersion),
        `${said(j.phaseflag)} ${j.phaseflagRight ? '✓' : '✗'}`,
        `${said(j.squawk)} ${j.squawkRight ? '✓' : '✗'}`,
        j.agree ? 'yes' : j.explanation ? 'no (explained)' : '**no (unexplained)**',
      ]),
    ),
  );
  const large = l.judged.filter((j) => j.entry.catalog === 'large');
  if (large.length) {
    out.push('', '## What phaseflag says on the large table', '');
    for (const j of large) for (const f of j.phaseflag) out.push(`- \`${j.entry.id}\` (${f.rule}): ${f.message}`);
  }
  return `${out.join('\n')}\n`;
}

/** A tool's findings as rule names (line), its rules outside the issue's list in italics; "—" for none. */
function said(findings: readonly ToolFinding[]): string {
  if (!findings.length) return '—';
  return findings.map((f) => (f.listed.length ? `${f.rule}:${f.line}` : `_${f.rule}:${f.line}_`)).join(', ');
}
