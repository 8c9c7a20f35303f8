import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The reliability suite runs in two sizes: `short` (inside `npm test`, a few minutes) and `long`
 * (`npm run test:reliability:long`, the figures committed in test/RELIABILITY.md). Each test scales its
 * counts (kills, interleavings, restarts) by the size and records what it tried and what it found.
 */
export type ReliabilitySize = 'short' | 'long';

export function reliabilitySize(): ReliabilitySize {
  return process.env.PHASEFLAG_RELIABILITY === 'long' ? 'long' : 'short';
}

/** `short` when the suite runs inside `npm test`, `long` for the committed figures. */
export function scaled(short: number, long: number): number {
  return reliabilitySize() === 'long' ? long : short;
}

/** Where findings are collected during a run; write-report.ts turns them into test/RELIABILITY.md. */
export function findingsDir(): string {
  return process.env.PHASEFLAG_RELIABILITY_OUT ?? join(tmpdir(), 'phaseflag-reliability');
}

export interface Finding {
  /** The report's section, e.g. "SIGKILL of the backfill" or "Hostile input". */
  section: string;
  /** One line: what was tried (counts, sizes) and what was found, e.g. "0 rows lost, 0 wrong rows". */
  line: string;
  /** Figures behind the line, kept in the JSON lines for a reader who wants them. */
  figures?: Record<string, number | string | boolean>;
}

/** Appends one finding for the report. Each test records after its assertions hold, so a line means a pass. */
export function recordFinding(finding: Finding): void {
  const dir = findingsDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${finding.section.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}.jsonl`);
  appendFileSync(file, `${JSON.stringify({ ...finding, size: reliabilitySize(), at: new Date().toISOString() })}\n`);
}
