import { isPhaseflagError, redactUrls, type ErrorCode } from '@phaseflag/core';
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

/** The first error in the cause chain Postgres refused for a missing privilege (SQLSTATE 42501), if any. */
function privilegeError(error: unknown): Error | null {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++)
    if ((e as { code?: unknown }).code === '42501') return e as Error;
  return null;
}

/**
 * Any thrown value as the report printed on stderr (and as JSON with --json), with every URL's password and
 * credential parameters as `***` (a driver or library may quote the connection string it was given).
 */
export function describeError(error: unknown): ErrorReport {
  const report = describe(error);
  const scrubbed = { ...report, message: redactUrls(report.message) };
  if (report.hint !== null) scrubbed.hint = redactUrls(report.hint);
  if (typeof report.value === 'string') scrubbed.value = redactUrls(report.value);
  return scrubbed;
}

function describe(error: unknown): ErrorReport {
  const denied = error instanceof CliError ? null : privilegeError(error);
  if (denied) {
    return {
      code: 'PF_PERMISSION_DENIED',
      message: `The database role lacks a privilege: ${denied.message}.`,
      hint: 'Run this as a role with the rights it needs (README "Privileges"): `phaseflag grants --role service|controller|readonly --to <role>` prints them.',
      ...(isPhaseflagError(error) ? { value: { code: error.code, message: error.message } } : {}),
      exitCode: exitCodeFor('PF_PERMISSION_DENIED'),
    };
  }
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
