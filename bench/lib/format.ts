export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
export const fixed = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
export const ratio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '—');
/** A ratio beside its target: three decimals where two would round onto the threshold and hide which side it is. */
export const ratioNear = (n: number, threshold: number): string =>
  Number.isFinite(n) && n !== threshold && n.toFixed(2) === threshold.toFixed(2) ? `${n.toFixed(3)}×` : ratio(n);
export const mb = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : '—');
export const ms = (n: number): string =>
  Number.isFinite(n) ? (n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`) : '—';
export const secs = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(n >= 100 ? 0 : 2)} s` : '—');
export const rowsLabel = (n: number): string =>
  n >= 1_000_000 && n % 1_000_000 === 0
    ? `${n / 1_000_000}M`
    : n >= 1000 && n % 1000 === 0
      ? `${n / 1000}k`
      : String(n);
export const signed = (n: number): string => `${n >= 0 ? '+' : ''}${fixed(n, 0)}`;
export const verdict = (pass: boolean | null): string =>
  pass === null ? 'not measured' : pass ? '**pass**' : '**MISSED**';

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${head.map(esc).join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}
