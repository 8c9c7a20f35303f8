import { processSlot } from '@phaseflag/local/internal';
import { redactPassword } from './connection-string.js';
import { startPostgres } from '@phaseflag/local';
import { canQuery } from './probe.js';

export type DatabaseKind = 'env' | 'local' | 'embedded';

export interface ResolvedDatabase {
  connectionString: string;
  kind: DatabaseKind;
  /** Drops this holder's claim; the embedded server stops when the last holder releases. Idempotent. */
  release(): Promise<void>;
}

export const LOCAL_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

interface ChosenDatabase {
  connectionString: string;
  kind: DatabaseKind;
  shutdown?: () => Promise<void>;
}

interface DatabaseSlot {
  chosen?: Promise<ChosenDatabase>;
  holders: number;
}

const slot = () => processSlot<DatabaseSlot>('database', () => ({ holders: 0 }));

/**
 * Finds the PostgreSQL every suite in this process shares. Order: `PHASEFLAG_EMBEDDED=1` forces embedded;
 * else `PHASEFLAG_DATABASE_URL`; else the local server when it answers; else an embedded server.
 * The choice is made once per process; each call is one holder and must be matched by `release()`.
 */
export async function resolveDatabase(): Promise<ResolvedDatabase> {
  const state = slot();
  state.holders++;
  const chosenPromise = (state.chosen ??= choose().catch((error: unknown) => {
    state.chosen = undefined;
    throw error;
  }));
  let chosen: ChosenDatabase;
  try {
    chosen = await chosenPromise;
  } catch (error) {
    state.holders--;
    throw error;
  }
  let released = false;
  return {
    connectionString: chosen.connectionString,
    kind: chosen.kind,
    release: async () => {
      if (released) return;
      released = true;
      state.holders--;
      // Only a server we started is stopped; env and local choices stay memoised so later suites skip the probe.
      if (state.holders === 0 && chosen.shutdown && state.chosen === chosenPromise) {
        state.chosen = undefined;
        await chosen.shutdown();
      }
    },
  };
}

async function choose(): Promise<ChosenDatabase> {
  const chosen = await chooseUnlogged();
  process.stderr.write(`[phaseflag/testkit] database: ${chosen.kind} ${redactPassword(chosen.connectionString)}\n`);
  return chosen;
}

async function chooseUnlogged(): Promise<ChosenDatabase> {
  const forceEmbedded = isTruthy(process.env.PHASEFLAG_EMBEDDED);
  const fromEnv = process.env.PHASEFLAG_DATABASE_URL;
  if (!forceEmbedded && fromEnv) return { connectionString: fromEnv, kind: 'env' };
  if (!forceEmbedded && (await canQuery(LOCAL_DATABASE_URL))) {
    return { connectionString: LOCAL_DATABASE_URL, kind: 'local' };
  }
  const server = await startPostgres();
  return { connectionString: server.url, kind: 'embedded', shutdown: () => server.stop() };
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.toLowerCase());
}
