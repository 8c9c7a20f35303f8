import { isPhaseflagError, type ErrorCode } from '@phaseflag/core';
import type { CliErrorCode } from './error-codes.js';
import { EXIT, exitCodeFor, type ExitCode } from './exit-codes.js';

/**
 * An error of the command line itself (bad arguments, no config, nothing to connect to), in the engine's shape:
 * a stable code of its own (`CliErrorCode`, never one of the engine's), the offending value and what to do.
 */
export class CliError extends Error {
  constructor(
    readonly code: CliErrorCode,
    message: string,
    readonly hint: string,
    readonly value?: unknown,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface ErrorReport {
  code: ErrorCode | CliErrorCode;
  message: string;
  hint: string | null;
  value?: unknown;
  exitCode: ExitCode;
}

/** Network and server errors node-postgres reports when the database cannot be reached or refuses us. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  '28P01',
  '28000',
  '3D000',
  'EPIPE',
  // admin_shutdown (a terminated backend), crash_shutdown, cannot_connect_now (starting up or shutting down)
  '57P01',
  '57P02',
  '57P03',
]);

/** Any thrown value as the report printed on stderr (and as JSON with --json). */
export function describeError(error: unknown): ErrorReport {
  if (error instanceof CliError) {
    return {
      code: error.code,
      message: error.message,
      hint: error.hint,
      ...(error.value !== undefined ? { value: error.value } : {}),
      exitCode: exitCodeFor(error.code),
    };
  }
  if (isPhaseflagError(error)) {
    return {
      code: error.code,
      message: error.message,
      hint: error.hint,
      ...(error.value !== undefined ? { value: error.value } : {}),
      exitCode: exitCodeFor(error.code),
    };
  }
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  const message = (error as Error | null)?.message ?? String(error);
  if (
    UNREACHABLE.has(code) ||
    code.startsWith('08') ||
    /Timeout acquiring a connection|connect ECONNREFUSED|Connection terminated|terminating connection|server closed the connection|Client has encountered a connection error/i.test(
      message,
    )
  ) {
    return {
      code: 'PF_DATABASE_UNAVAILABLE',
      message: `Cannot use the database: ${message || code}.`,
      hint: 'Check --database-url / DATABASE_URL (host, port, user, password, database name) and that the server is up.',
      exitCode: EXIT.unavailable,
    };
  }
  return {
    code: 'PF_UNEXPECTED',
    message: message || 'unknown error',
    hint: 'This is likely a bug in phaseflag; rerun with --verbose and report it with the output.',
    exitCode: EXIT.error,
  };
}
