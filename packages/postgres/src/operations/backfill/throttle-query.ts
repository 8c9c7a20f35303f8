import type { Knex } from 'knex';
import { THROTTLE_STATEMENT_TIMEOUT_MS, throttleStatement } from '../../catalog/throttle-query.js';
import { Session } from '../../driver/session.js';

/**
 * Runs the throttle query, read-only, on a connection of its own outside the pool (the workers may hold every
 * pooled one), never the one that holds the runner's lock.
 */
export class ThrottleQuery {
  private session: Session | null = null;
  private readonly text: string;

  constructor(
    private readonly knex: Knex,
    private readonly query: string,
    private readonly migrationId: string,
  ) {
    this.text = throttleStatement(query, migrationId);
  }

  /** The first column of the first row; false when the query returns no row. */
  async holdBack(): Promise<boolean> {
    this.session ??= await Session.openDedicated(this.knex);
    const row = await this.session.readOnly(this.text, THROTTLE_STATEMENT_TIMEOUT_MS);
    return row !== undefined && Object.values(row)[0] === true;
  }

  /** Closed, with whatever the query may have left on the session (see releaseAfterForeignSql). */
  async close(): Promise<void> {
    const session = this.session;
    this.session = null;
    await session?.releaseAfterForeignSql();
  }
}
