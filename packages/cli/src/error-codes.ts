/**
 * The command line's own error codes, apart from the engine's (`ErrorCode` in @phaseflag/core, each thrown by the
 * one class core's table names): the command's arguments and config (thrown as `CliError`), and the codes an error
 * report gives what no phaseflag error describes (the database unreachable, a bug, an interruption). Every code,
 * the engine's and these, has its exit code in `exit-codes.ts`.
 */
export type CliErrorCode =
  | 'PF_USAGE_BAD_OPTION'
  | 'PF_USAGE_BAD_KNOB'
  | 'PF_USAGE_FILE_EXISTS'
  | 'PF_USAGE_DUPLICATE_MIGRATION'
  | 'PF_USAGE_CONFIG_NOT_EDITABLE'
  | 'PF_USAGE_INVALID_MIGRATION'
  | 'PF_USAGE_NO_DATABASE'
  | 'PF_USAGE_NO_UNLEASH'
  | 'PF_CONFIG_NOT_FOUND'
  | 'PF_CONFIG_INVALID'
  | 'PF_DATABASE_UNAVAILABLE'
  | 'PF_LOCAL_START'
  | 'PF_PERMISSION_DENIED'
  | 'PF_INTERRUPTED'
  | 'PF_UNEXPECTED';
