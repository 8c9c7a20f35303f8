import { CliError } from './errors.js';

export type LocalModule = typeof import('@phaseflag/local');

/**
 * `@phaseflag/local` (the embedded PostgreSQL and the in-process Unleash) is an optional peer dependency: loaded
 * only by the commands that start something locally, with what to do when it is not installed.
 */
export async function importLocal(missing: { message: string; hint: string }): Promise<LocalModule> {
  try {
    return await import('@phaseflag/local');
  } catch {
    throw new CliError(
      'PF_USAGE_NO_DATABASE',
      `${missing.message} @phaseflag/local is not installed.`,
      `${missing.hint}npm install --save-dev @phaseflag/local.`,
    );
  }
}
