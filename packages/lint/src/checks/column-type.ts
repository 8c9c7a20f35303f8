import type { TypeInfo } from '../ast.js';

/**
 * The type changes that Postgres makes without rewriting the table (binary-coercible, or a typmod change its
 * support function declares a no-op), as strong_migrations lists them. Anything else rewrites every row and
 * rebuilds every index under ACCESS EXCLUSIVE.
 *
 * 'utc-only': timestamp ↔ timestamptz, which rewrites unless the session's TimeZone is UTC (PostgreSQL 12+).
 */
export function rewriteOf(from: TypeInfo, to: TypeInfo, pgVersion: number): 'none' | 'rewrite' | 'utc-only' {
  if (from.array !== to.array) return 'rewrite';
  const same = from.base === to.base;
  if (same && from.mods.join(',') === to.mods.join(',')) return 'none';
  const a = from.base;
  const b = to.base;
  const unbounded = to.mods.length === 0;
  // varchar(n) → varchar(m ≥ n), varchar, text; varchar / text → varchar or text without a length
  if ((a === 'varchar' || a === 'text') && (b === 'text' || (b === 'varchar' && unbounded))) return 'none';
  if (a === 'varchar' && b === 'varchar' && from.mods.length === 1 && to.mods[0]! >= from.mods[0]!) return 'none';
  // numeric(p, s) → numeric(q ≥ p, s) or numeric
  if (a === 'numeric' && b === 'numeric') {
    if (unbounded) return 'none';
    const [p = 0, s = 0] = from.mods;
    const [q = 0, t = 0] = to.mods;
    if (from.mods.length > 0 && q >= p && t === s) return 'none';
    return 'rewrite';
  }
  if (a === 'varbit' && b === 'varbit' && (unbounded || (from.mods.length === 1 && to.mods[0]! >= from.mods[0]!)))
    return 'none';
  // precision up (or dropped) for time types: their support functions make it a catalog change
  if (same && ['timestamp', 'timestamptz', 'time', 'interval'].includes(a)) {
    if (unbounded || (from.mods.length > 0 && to.mods[0]! >= from.mods[0]!)) return 'none';
    return 'rewrite';
  }
  if (a === 'cidr' && b === 'inet') return 'none';
  if (
    pgVersion >= 12 &&
    ((a === 'timestamp' && b === 'timestamptz') || (a === 'timestamptz' && b === 'timestamp')) &&
    (unbounded || from.mods.length === 0 || to.mods[0]! >= from.mods[0]!)
  )
    return 'utc-only';
  return 'rewrite';
}
