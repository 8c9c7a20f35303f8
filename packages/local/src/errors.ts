/**
 * The error `@phaseflag/local` throws: a stable `code` (`PF_LOCAL_…`), a message that says what failed and a
 * `hint` that says what to do, the house shape of `PhaseflagError` without a dependency on `@phaseflag/core`.
 */
export class LocalError extends Error {
  readonly code: string;
  readonly hint: string;

  constructor(code: string, message: string, hint: string, options?: { cause?: unknown }) {
    super(`${message}\n  hint: ${hint}`, options);
    this.name = 'LocalError';
    this.code = code;
    this.hint = hint;
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
