/** What a caller needs from an error raised by Postgres through knex and pg. */
export interface PgErrorFacts {
  /** SQLSTATE, e.g. 55P03 (lock_not_available); undefined for errors that did not come from the server. */
  readonly code: string | undefined;
  /** The server's message, without the statement knex prepends ("<sql> - <message>"). */
  readonly message: string;
  readonly detail: string | undefined;
}

export const SQLSTATE = {
  lockNotAvailable: '55P03',
  deadlockDetected: '40P01',
  queryCanceled: '57014',
  featureNotSupported: '0A000',
  undefinedObject: '42704',
  invalidObjectDefinition: '42P17',
  foreignKeyViolation: '23503',
} as const;

/**
 * knex rewrites `message` to "<formatted sql> - <server message>". The prefix is stripped when it is one of the
 * texts we sent; otherwise the message is returned whole rather than cut at a guess (the server's own message
 * may contain " - ", e.g. "operator does not exist: text - integer").
 */
export function pgError(error: unknown, ...sentSql: string[]): PgErrorFacts {
  const e = error as { code?: unknown; message?: unknown; detail?: unknown } | null;
  let message = typeof e?.message === 'string' ? e.message : String(error);
  for (const sql of sentSql.flatMap((t) => [t, positional(t)])) {
    if (message.startsWith(`${sql} - `)) {
      message = message.slice(sql.length + 3);
      break;
    }
  }
  return {
    code: typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined,
    message,
    detail: typeof e?.detail === 'string' ? e.detail : undefined,
  };
}

/** knex's `?` placeholders as the `$n` it sends (and prefixes errors with); `??` identifiers are left alone. */
function positional(sql: string): string {
  let n = 0;
  return sql.replace(/\?\?|\\\?|\?/g, (m) => (m === '?' ? `$${++n}` : m));
}

/** Network errors node-postgres reports for a connection that broke or could not be made. */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
const LOST_MESSAGE =
  /Connection terminated|terminating connection|server closed the connection|Client has encountered a connection error|Connection ended|not queryable|connection is closed/i;

/**
 * Whether an error means the connection to the server was lost (or cannot be made now), not that a statement
 * failed: an administrator command or a server shutdown (57P01, 57P02), a server starting up (57P03), a
 * connection exception (class 08), a network error, or node-postgres/knex reporting a connection that ended.
 * Its cause chain is searched too (an error wrapped by phaseflag keeps the original as `cause`).
 */
export function isConnectionLost(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 4) return false;
  const e = error as { code?: unknown; message?: unknown; cause?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === '57P01' || code === '57P02' || code === '57P03' || /^08[0-9A-Z]{3}$/.test(code)) return true;
  if (NETWORK_CODES.has(code)) return true;
  if (typeof e.message === 'string' && LOST_MESSAGE.test(e.message)) return true;
  return isConnectionLost(e.cause, depth + 1);
}
