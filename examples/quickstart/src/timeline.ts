/**
 * The migration's trace as a terminal timeline: one row per phaseflag span the services exported (transitions,
 * the backfill, verify, refusals), placed on one time axis from the first to the last.
 */
import type { ReceivedSpan } from './otlp-receiver.js';

export const TIMELINE_SPANS = new Set([
  'phaseflag.transition',
  'phaseflag.transition.refused',
  'phaseflag.backfill',
  'phaseflag.verify',
]);

export function renderTimeline(
  spans: ReceivedSpan[],
  options: { migrationId?: string; width?: number } = {},
): string[] {
  const shown = spans
    .filter((s) => TIMELINE_SPANS.has(s.name))
    .filter(
      (s) =>
        !options.migrationId ||
        s.attributes['phaseflag.migration.id'] === undefined ||
        s.attributes['phaseflag.migration.id'] === options.migrationId,
    )
    .sort((a, b) => a.startMs - b.startMs);
  if (shown.length === 0) return [];
  const start = shown[0]!.startMs;
  const end = Math.max(...shown.map((s) => s.endMs));
  const span = Math.max(end - start, 1);
  const width = options.width ?? 40;
  const labels = shown.map(labelOf);
  const labelWidth = Math.min(34, Math.max(...labels.map((l) => l.length)));
  const sourceWidth = Math.min(20, Math.max(...shown.map((s) => s.source.length)));
  const lines = shown.map((s, i) => {
    const a = Math.min(width - 1, Math.floor(((s.startMs - start) / span) * width));
    const b = Math.max(a + 1, Math.min(width, Math.ceil(((s.endMs - start) / span) * width)));
    const mark = s.name === 'phaseflag.transition.refused' ? '▲' : '█';
    const bar = `${' '.repeat(a)}${mark.repeat(b - a)}${' '.repeat(width - b)}`;
    const at = `+${formatSeconds(s.startMs - start)}`;
    return `  ${labels[i]!.slice(0, labelWidth).padEnd(labelWidth)} ${s.source.slice(0, sourceWidth).padEnd(sourceWidth)} ${at.padStart(8)} │${bar}│ ${formatDuration(s.endMs - s.startMs)}`;
  });
  return [
    `  ${''.padEnd(labelWidth)} ${'instance'.padEnd(sourceWidth)} ${'start'.padStart(8)} ${'─'.repeat(width + 2)} ${formatSeconds(span)} in all`,
    ...lines,
  ];
}

function labelOf(s: ReceivedSpan): string {
  const a = s.attributes;
  if (s.name === 'phaseflag.transition')
    return `${String(a['phaseflag.phase.from'])} → ${String(a['phaseflag.phase.to'])}`;
  if (s.name === 'phaseflag.transition.refused')
    return `refused ${String(a['phaseflag.action'] ?? '?')}: ${String(a['phaseflag.refusal.code'] ?? '?')}`;
  if (s.name === 'phaseflag.backfill')
    return `backfill${a['phaseflag.rows'] !== undefined ? ` (${Number(a['phaseflag.rows']).toLocaleString('en-US')} rows)` : ''}`;
  if (s.name === 'phaseflag.verify')
    return `verify${a['phaseflag.rows'] !== undefined ? ` (${Number(a['phaseflag.rows']).toLocaleString('en-US')} rows)` : ''}`;
  return s.name;
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : formatSeconds(ms);
}
