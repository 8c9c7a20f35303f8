import { readFlagState, type FlagSource } from '@phaseflag/core';
import type { ShadowStatus } from '@phaseflag/postgres';
import { formatNumber, table, type Output } from './output.js';

/** A mismatch shadow reads saw: the row's key, both columns as text, which instance read it and when. */
export interface ShadowMismatchJson {
  key: unknown[];
  old: string | null;
  new: string | null;
  instanceId: string | null;
  at: string;
}

/** Shadow reads as `status --json` prints them (null when the migration declares no shadow). */
export interface ShadowJson {
  flag: { name: string; enabled: boolean | null; fullyOn: boolean | null };
  sampleRatio: number;
  minCompared: number;
  minMatchRate: number;
  /** The migration is verified: these are the counts read-new waits for (else those of the last verified). */
  active: boolean;
  /** The phase version of the verified they were counted in. */
  version: number;
  compared: number;
  mismatched: number;
  matchRate: number;
  /** The read-new guard's shadow condition holds (enough compared rows, enough of them matching). */
  readNewAllowed: boolean;
  reason: string | null;
  /** The first mismatches over every instance (at most 10). */
  mismatches: ShadowMismatchJson[];
  instances: Array<{
    instanceId: string;
    compared: number;
    mismatched: number;
    mismatches: ShadowMismatchJson[];
    firstAt: string;
    lastAt: string;
  }>;
}

const mismatch = (m: ShadowStatus['mismatches'][number]): ShadowMismatchJson => ({
  key: [...m.key],
  old: m.old,
  new: m.new,
  instanceId: m.instanceId ?? null,
  at: m.at,
});

export function shadowJson(s: ShadowStatus | null | undefined, source: FlagSource | null): ShadowJson | null {
  if (!s) return null;
  const state = source ? readFlagState(source, s.flag) : undefined;
  return {
    flag: { name: s.flag, enabled: state?.enabled ?? null, fullyOn: state?.fullyOn ?? null },
    sampleRatio: s.sampleRatio,
    minCompared: s.minCompared,
    minMatchRate: s.minMatchRate,
    active: s.active,
    version: s.version,
    compared: s.compared,
    mismatched: s.mismatched,
    matchRate: s.matchRate,
    readNewAllowed: s.readNewAllowed,
    reason: s.reason,
    mismatches: s.mismatches.map(mismatch),
    instances: s.instances.map((i) => ({
      instanceId: i.instanceId,
      compared: i.compared,
      mismatched: i.mismatched,
      mismatches: i.mismatches.map(mismatch),
      firstAt: new Date(i.firstAt).toISOString(),
      lastAt: new Date(i.lastAt).toISOString(),
    })),
  };
}

const percent = (r: number) => `${Math.floor(r * 10_000) / 100}%`;

/** The summary row: counts against what read-new needs, and the first mismatches. */
export function shadowText(out: Output, s: ShadowJson): string {
  const { c } = out;
  const counts = `${formatNumber(s.compared)} compared, ${s.mismatched > 0 ? c.red(`${formatNumber(s.mismatched)} mismatched`) : '0 mismatched'} (match rate ${percent(s.matchRate)}; read-new needs ${formatNumber(s.minCompared)} at ${percent(s.minMatchRate)})`;
  const verdict = s.readNewAllowed ? c.green('read-new may proceed') : c.yellow(s.reason ?? '');
  return [
    `${counts}${s.active ? '' : c.dim(` — of the last verified (v${s.version})`)}`,
    verdict,
    ...s.mismatches.map(
      (m) =>
        `  key ${JSON.stringify(m.key)}  old ${JSON.stringify(m.old)}  new ${JSON.stringify(m.new)}  ${c.dim(`(${m.instanceId ?? '?'} at ${m.at})`)}`,
    ),
    c.dim(`flag ${s.flag.name}, sample ${percent(s.sampleRatio)} of reads`),
  ].join('\n');
}

/** One line per instance that reported shadow comparisons. */
export function shadowInstancesTable(out: Output, s: ShadowJson): string {
  const t = table(out, { head: ['shadow reads of', 'compared', 'mismatched', 'last report'] });
  for (const i of s.instances)
    t.push([
      i.instanceId,
      formatNumber(i.compared),
      i.mismatched > 0 ? out.c.red(formatNumber(i.mismatched)) : '0',
      i.lastAt,
    ]);
  return t.toString();
}
