/**
 * The testkit's own error type. It mirrors the house `PhaseflagError` shape (stable `code`, a `hint` that says
 * what to do) without importing `@phaseflag/core`, so the harness never depends on the code it tests.
 */
export class TestkitError extends Error {
  readonly code: string;
  readonly hint: string;

  constructor(code: string, message: string, hint: string, options?: { cause?: unknown }) {
    super(`${message}\n  hint: ${hint}`, options);
    this.name = 'TestkitError';
    this.code = code;
    this.hint = hint;
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
