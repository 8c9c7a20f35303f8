import { stat, utimes } from 'node:fs/promises';
import type { Logger } from '@phaseflag/core';

/**
 * unleash-client's backup file, as a clock: its mtime says when the data in it was last confirmed by Unleash.
 * The client rewrites the file only when the data changes (a 304 leaves it alone), so `confirmed()` bumps the
 * mtime on every unchanged poll; a service restarted during an outage can then date the data it loads from it.
 */
export class BackupFile {
  private touchFailed = false;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** The file's mtime in ms, or undefined (logged) when it cannot be read. */
  async confirmedAt(): Promise<number | undefined> {
    try {
      return (await stat(this.path)).mtimeMs;
    } catch (error) {
      this.logger.warn(
        "phaseflag: cannot read the unleash-client backup file's age; flags stay unknown until Unleash answers",
        {
          file: this.path,
          error: (error as Error).message,
        },
      );
      return undefined;
    }
  }

  /** Unleash confirmed the data at `now` (ms). A missing file is normal before the first change is saved. */
  async confirmed(now: number): Promise<void> {
    try {
      await utimes(this.path, now / 1000, now / 1000);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || this.touchFailed) return;
      this.touchFailed = true; // said once: the next failures are the same failure
      this.logger.warn(
        "phaseflag: cannot update the unleash-client backup file's mtime; after a restart during an outage its data may read as stale",
        {
          file: this.path,
          error: (error as Error).message,
        },
      );
    }
  }
}
