import { ValidationError } from './errors.js';

/**
 * Identifiers are accepted only in a conservative form (what an unquoted Postgres identifier may be, in any
 * case, at most 63 bytes) and are always quoted when they reach SQL. Refusing odd names up front is cheaper
 * than reasoning about every place a quoted name with a dot, quote or NUL could surprise a reader.
 */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/;
const MAX_IDENTIFIER_BYTES = 63;

export function validateIdentifier(value: unknown, what: string): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || Buffer.byteLength(value) > MAX_IDENTIFIER_BYTES) {
    throw new ValidationError('PF_INVALID_IDENTIFIER', `Invalid ${what}: ${JSON.stringify(value)}.`, {
      value,
      hint: `Use letters, digits, _ and $, starting with a letter or _, at most ${MAX_IDENTIFIER_BYTES} bytes (for example "amount_cents").`,
    });
  }
  return value;
}

/** Quotes one identifier for SQL, doubling embedded quotes (the only escape Postgres knows for identifiers). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export interface QualifiedName {
  /** The schema, or undefined to mean the connection's current schema (resolved at plan time). */
  readonly schema: string | undefined;
  readonly name: string;
}

/** Parses `table` or `schema.table`, validating both parts. */
export function parseQualifiedName(value: unknown, what: string): QualifiedName {
  if (typeof value === 'object' && value !== null && 'name' in value) {
    const v = value as { schema?: unknown; name: unknown };
    return {
      schema: v.schema === undefined ? undefined : validateIdentifier(v.schema, `${what} schema`),
      name: validateIdentifier(v.name, what),
    };
  }
  if (typeof value !== 'string') return { schema: undefined, name: validateIdentifier(value, what) };
  const parts = value.split('.');
  if (parts.length === 1) return { schema: undefined, name: validateIdentifier(parts[0], what) };
  if (parts.length === 2)
    return { schema: validateIdentifier(parts[0], `${what} schema`), name: validateIdentifier(parts[1], what) };
  throw new ValidationError('PF_INVALID_IDENTIFIER', `Invalid ${what}: ${JSON.stringify(value)}.`, {
    value,
    hint: 'Name a table as "table" or "schema.table".',
  });
}

export function formatQualifiedName(name: QualifiedName): string {
  return name.schema === undefined ? quoteIdent(name.name) : `${quoteIdent(name.schema)}.${quoteIdent(name.name)}`;
}
