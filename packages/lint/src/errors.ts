import { PhaseflagError, type ErrorCodeOf, type PhaseflagErrorOptions } from '@phaseflag/core';

/**
 * Lint's input cannot be read as asked: a file that does not parse (`PF_LINT_SYNTAX`, with its file, line and
 * column), a rule name lint does not know, a missing or unsupported file, a knex migration that cannot be loaded.
 * Nothing was linted; the message names the input and the hint what to do.
 */
export class LintError extends PhaseflagError {
  declare readonly code: ErrorCodeOf<'LintError'>;
  /** The file concerned, when there is one. */
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(
    code: ErrorCodeOf<'LintError'>,
    message: string,
    options: PhaseflagErrorOptions & { file?: string; line?: number; column?: number },
  ) {
    super(code, message, options);
    this.file = options.file;
    this.line = options.line;
    this.column = options.column;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), file: this.file, line: this.line, column: this.column };
  }
}
