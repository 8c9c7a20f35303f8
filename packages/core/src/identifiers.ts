import { ValidationError } from './errors.js';

/**
 * An identifier is any name Postgres accepts when it is quoted: a non-empty string without NUL, at most 63 bytes
 * in UTF-8 (NAMEDATALEN - 1). Spaces, dots, quotes, upper case, `$`, any Unicode letter and SQL keywords are all
 * fine, since every name is quoted (`quoteIdent`) where it reaches SQL. A longer name is refused rather than
 * silently cut at 63 bytes the way Postgres cuts it, which would make two names the same object.
 */
const MAX_IDENTIFIER_BYTES = 63;

export function validateIdentifier(value: unknown, what: string): string {
  const problem = identifierProblem(value);
  if (problem !== null) {
    throw new ValidationError('PF_INVALID_IDENTIFIER', `Invalid ${what} ${JSON.stringify(value)}: ${problem}.`, {
      value,
      hint: `A name is any non-empty string without NUL of at most ${MAX_IDENTIFIER_BYTES} bytes (UTF-8), written as it is in the catalog (no surrounding quotes); for example "amount_cents" or "Payload Json".`,
    });
  }
  return value as string;
}

function identifierProblem(value: unknown): string | null {
  if (typeof value !== 'string') return `it is ${value === null ? 'null' : typeof value}, not a string`;
  if (value === '') return 'it is empty';
  if (value.includes('\u0000')) return 'it contains a NUL character (\\0), which Postgres names cannot hold';
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_IDENTIFIER_BYTES)
    return `it is ${bytes} bytes in UTF-8, over Postgres's limit of ${MAX_IDENTIFIER_BYTES} (a longer name would be cut silently)`;
  return null;
}

/**
 * Quotes one identifier for SQL, doubling embedded quotes (the only escape Postgres knows in `"…"`). A name holding
 * `?` is written in the Unicode escape form `U&"…"` with `?` as `\003F` (and `\` as `\\`), so the text holds no
 * `?`: knex reads every `?` of a statement as a placeholder, even inside quotes. Regclass input and PL/pgSQL
 * variables do not read `U&"…"`; code that writes names there uses the plain `"…"` form.
 */
export function quoteIdent(name: string): string {
  if (!name.includes('?')) return `"${name.replace(/"/g, '""')}"`;
  return `U&"${name.replace(/\\/g, '\\\\').replace(/"/g, '""').replace(/\?/g, '\\003F')}"`;
}

export interface QualifiedName {
  /** The schema, or undefined to mean the connection's current schema (resolved at plan time). */
  readonly schema: string | undefined;
  readonly name: string;
}

/**
 * Parses a table name. The object form `{ schema?, name }` takes both parts verbatim. The string form is
 * `table` or `schema.table`, each part either as typed (no case folding, unlike Postgres: `Orders` is the table
 * "Orders") or double-quoted as in SQL, which is how a part holding `.` or `"` is written:
 * `"Sales Data"."order-lines"`, `"a.b"`, `"we""ird"`.
 */
export function parseQualifiedName(value: unknown, what: string): QualifiedName {
  if (typeof value === 'object' && value !== null && 'name' in value) {
    const v = value as { schema?: unknown; name: unknown };
    return {
      schema: v.schema === undefined ? undefined : validateIdentifier(v.schema, `${what} schema`),
      name: validateIdentifier(v.name, what),
    };
  }
  if (typeof value !== 'string') return { schema: undefined, name: validateIdentifier(value, what) };
  const parts = splitQualifiedName(value);
  if (parts === null || parts.length > 2 || parts.includes('')) {
    throw new ValidationError('PF_INVALID_IDENTIFIER', `Invalid ${what} ${JSON.stringify(value)}.`, {
      value,
      hint: 'Name a table as "table" or "schema.table"; double-quote a part that holds "." or a double quote, doubling the quotes inside it: \'"Sales Data"."order-lines"\', \'"we""ird"\' (or pass { schema, name }, taken verbatim).',
    });
  }
  if (parts.length === 1) return { schema: undefined, name: validateIdentifier(parts[0], what) };
  return { schema: validateIdentifier(parts[0], `${what} schema`), name: validateIdentifier(parts[1], what) };
}

/** The parts of `a.b`, `"a.b"`, `"x"."y"`; null when a quote is unbalanced or stray (`a"b`, `"a"b`). */
function splitQualifiedName(text: string): string[] | null {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) return null;
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        part += text[i++];
      }
      i++;
      if (i < text.length && text[i] !== '.') return null;
    } else {
      const end = text.indexOf('.', i);
      part = end < 0 ? text.slice(i) : text.slice(i, end);
      if (part.includes('"')) return null;
      i += part.length;
    }
    parts.push(part);
    if (i >= text.length) return parts;
    i++; // the dot
  }
}

export function formatQualifiedName(name: QualifiedName): string {
  return name.schema === undefined ? quoteIdent(name.name) : `${quoteIdent(name.schema)}.${quoteIdent(name.name)}`;
}
