/**
 * Case 10's verdicts: for each corpus entry, whether each tool was right (an unsafe entry: it reported the entry's
 * hazard; a safe twin: it reported nothing from the issue's list of hazards), whether the two agree, and whether a
 * disagreement is explained. Pure: the case feeds it what each tool said; the report renders what comes out.
 */
import type { CorpusEntry } from '../lint-corpus/load.js';

/** A finding of either tool, with phaseflag's names for it where the rule is one of the hazards (`listed`). */
export interface ToolFinding {
  /** The tool's own rule name. */
  rule: string;
  /**
   * The hazards it stands for, under phaseflag's names: phaseflag's own rule; for squawk, every phaseflag rule
   * that names it as squawk's (constraint-missing-not-valid stands for two); empty for squawk's other rules.
   */
  listed: readonly string[];
  level: string;
  line: number;
  message: string;
}

export interface JudgedEntry {
  entry: Omit<CorpusEntry, 'source' | 'path'>;
  /** The SQL squawk was given for a knex entry (phaseflag's capture of its `up`). */
  squawkInput?: string;
  phaseflag: ToolFinding[];
  squawk: ToolFinding[];
  phaseflagRight: boolean;
  squawkRight: boolean;
  agree: boolean;
  /** For a disagreement: the corpus's explanation, when phaseflag is the one that is right. */
  explanation?: string;
  /** For a catalog-aware entry on the large table: phaseflag's finding states the table's size. */
  statesSize?: boolean;
}

/** Does a catalog-aware finding on the large table state the size? (strong_migrations' shape: "…of 300,000 rows…") */
export const STATES_SIZE = /\d[\d,.\s]*\s*(?:k|M|thousand|million)?\s*rows/i;

export function judge(
  entry: CorpusEntry,
  phaseflag: ToolFinding[],
  squawk: ToolFinding[],
  squawkInput?: string,
): JudgedEntry {
  const right = (findings: ToolFinding[]) => {
    const listed = new Set(findings.flatMap((f) => f.listed));
    return entry.verdict === 'unsafe' ? listed.has(entry.rule) : listed.size === 0;
  };
  const phaseflagRight = right(phaseflag);
  const squawkRight = right(squawk);
  const agree = phaseflagRight === squawkRight;
  const { source: _source, path: _path, ...described } = entry;
  const out: JudgedEntry = { entry: described, phaseflag, squawk, phaseflagRight, squawkRight, agree };
  if (squawkInput !== undefined) out.squawkInput = squawkInput;
  // An explanation in the corpus says why squawk errs; it cannot excuse phaseflag being the one that is wrong.
  if (!agree && phaseflagRight && entry.disagreement) out.explanation = entry.disagreement;
  if (entry.catalog === 'large' && entry.verdict === 'unsafe')
    out.statesSize = phaseflag.some((f) => f.listed.includes(entry.rule) && STATES_SIZE.test(f.message));
  return out;
}

export interface LintTally {
  entries: number;
  unsafe: number;
  safe: number;
  phaseflagCaught: number;
  squawkCaught: number;
  /** Unsafe entries squawk caught and phaseflag missed. */
  missedBySquawkCatch: JudgedEntry[];
  phaseflagFalse: number;
  squawkFalse: number;
  agreements: number;
  disagreements: JudgedEntry[];
  unexplained: JudgedEntry[];
  catalog: JudgedEntry[];
  catalogWrong: JudgedEntry[];
}

export function tally(judged: readonly JudgedEntry[]): LintTally {
  const unsafe = judged.filter((j) => j.entry.verdict === 'unsafe');
  const safe = judged.filter((j) => j.entry.verdict === 'safe');
  const disagreements = judged.filter((j) => !j.agree);
  const catalog = judged.filter((j) => j.entry.catalog);
  return {
    entries: judged.length,
    unsafe: unsafe.length,
    safe: safe.length,
    phaseflagCaught: unsafe.filter((j) => j.phaseflagRight).length,
    squawkCaught: unsafe.filter((j) => j.squawkRight).length,
    missedBySquawkCatch: unsafe.filter((j) => j.squawkRight && !j.phaseflagRight),
    phaseflagFalse: safe.filter((j) => !j.phaseflagRight).length,
    squawkFalse: safe.filter((j) => !j.squawkRight).length,
    agreements: judged.length - disagreements.length,
    disagreements,
    unexplained: disagreements.filter((j) => !j.explanation),
    catalog,
    catalogWrong: catalog.filter((j) => !j.phaseflagRight || j.statesSize === false),
  };
}

/** Which rules have an unsafe and a safe entry in each form; the rules of `names` that lack one. */
export function coverage(
  entries: readonly Pick<CorpusEntry, 'rule' | 'verdict' | 'form'>[],
  names: readonly string[],
): { rule: string; missing: string[] }[] {
  const have = new Set(entries.map((e) => `${e.rule}|${e.form}|${e.verdict}`));
  return names.map((rule) => ({
    rule,
    missing: ['sql|unsafe', 'sql|safe', 'knex|unsafe', 'knex|safe'].filter((k) => !have.has(`${rule}|${k}`)),
  }));
}
