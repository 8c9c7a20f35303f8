// The public surface of @phaseflag/cli as a library: what a phaseflag.config.ts imports. The binary is dist/cli.js.
export { defineConfig, CONFIG_FILES, type PhaseflagConfig } from './config.js';
export { EXIT, exitCodeFor, type ExitCode } from './exit-codes.js';
export type { CliErrorCode } from './error-codes.js';
