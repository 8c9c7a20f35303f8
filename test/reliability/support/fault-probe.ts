/**
 * Watches pg_stat_activity for two backfill runners writing at once: a sample where backends of two different
 * processes (told apart by application_name) both run an UPDATE of the table and neither waits on a lock. A runner
 * taking over from a fenced one starts at the checkpoint, on the rows of the fenced one's last batch, and queues
 * behind its row locks until that batch is rolled back: it waits, so that is not counted; two runners that both
 * make progress are. (Reads overlap harmlessly while a fenced batch finishes, so they are not counted either.)
 * Sampling can miss short overlaps: rows_backfilled against the row count is the exact check.
 */
import type { Knex } from 'knex';

export class ConcurrencyProbe {
  samples = 0;
  overlaps = 0;
  private readonly seen: string[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly knex: Knex,
    private readonly table: string,
    private readonly apps: string[],
    private readonly everyMs = 20,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        try {
          const rows = (
            await this.knex.raw(
              `SELECT DISTINCT application_name FROM pg_stat_activity
                WHERE state = 'active' AND application_name = ANY(?::text[]) AND pid <> pg_backend_pid()
                  AND wait_event_type IS DISTINCT FROM 'Lock'
                  AND query ~* '^[[:space:]]*UPDATE' AND strpos(query, ?) > 0`,
              [this.apps, this.table],
            )
          ).rows as { application_name: string }[];
          this.samples++;
          if (rows.length > 1) {
            this.overlaps++;
            if (this.seen.length < 3) this.seen.push(rows.map((r) => r.application_name).join(' + '));
          }
        } catch {
          // A sample lost to load is only a sample.
        }
        await new Promise((resolve) => setTimeout(resolve, this.everyMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  describe(): string {
    return `${this.overlaps} of ${this.samples} samples: ${this.seen.join('; ')}`;
  }
}
