/**
 * A process for the reliability suite to SIGKILL: it drives one migration to `verified` the way the phaseflag CLI
 * does, through the public API, and reports over IPC where it is, so that the parent can strike at a chosen moment.
 *
 * PF_MODE=steps      the CLI's `expand`, `dual-write`, `backfill`, `verify`, each from the phase the store says
 * PF_MODE=controller a controller (`phaseflag run`) with the dual-write and backfill flags on, until `verified`
 *
 * Messages: { type: 'stage', stage: 'ddl' | 'dual-write' | 'backfill' | 'verify', phase }, { type: 'progress',
 * rowsDone }, { type: 'done', phase }, { type: 'error', code, message }. Exits 0 when verified, 1 on an error.
 */
import { StaticFlagSource, defineMigration, type Logger, type MigrationInput } from '@phaseflag/core';
import { Phaseflag } from '@phaseflag/postgres';
import knexFactory from 'knex';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`kill-child: ${name} is not set`);
  return v;
};

const send = (m: Record<string, unknown>): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send({ ...m, at: Date.now() }, () => resolve());
  });

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function main(): Promise<void> {
  const input = JSON.parse(env('PF_MIGRATION')) as MigrationInput;
  const instanceId = env('PF_INSTANCE_ID');
  const knex = knexFactory({
    client: 'pg',
    connection: { connectionString: env('PF_CONNECTION'), application_name: `kill-child ${instanceId}` },
    pool: { min: 0, max: 6 },
  });
  const pf = new Phaseflag({
    knex,
    stateSchema: env('PF_STATE_SCHEMA'),
    pollIntervalMs: 100,
    graceMs: 50,
    logger: quiet,
  });
  await pf.install();
  const m = pf.migration(input);
  await m.register();
  const onProgress = (p: { rowsDone: number }) => void send({ type: 'progress', rowsDone: p.rowsDone });
  const verifyBatch = Number(process.env.PF_VERIFY_BATCH ?? 500);

  if (process.env.PF_MODE === 'controller') {
    const names = defineMigration(input).flags;
    const flags = new StaticFlagSource({
      [names.dualWrite]: true,
      [names.backfill]: true,
      [names.readNew]: false,
      [names.contract]: false,
    });
    const stageOf: Record<string, string> = {
      pending: 'ddl',
      'rolled-back': 'ddl',
      expanded: 'dual-write',
      'dual-write': 'backfill',
      backfilling: 'backfill',
      backfilled: 'verify',
    };
    let settled: () => void = () => undefined;
    const verified = new Promise<void>((resolve) => (settled = resolve));
    const onPhase = (phase: string) => {
      if (stageOf[phase]) void send({ type: 'stage', stage: stageOf[phase], phase });
      if (phase === 'verified') settled();
    };
    // A rolled-back migration restarts with expand() by hand (the controller leaves it be): the operator's part.
    if ((await m.status()).phase === 'rolled-back') {
      await send({ type: 'stage', stage: 'ddl', phase: 'rolled-back' });
      await m.expand();
    }
    onPhase((await m.status()).phase);
    m.watch((snap) => onPhase(snap.phase));
    const controller = pf.controller(m, {
      flags,
      instanceId,
      intervalMs: 200,
      logger: quiet,
      backfill: { onProgress },
    });
    await controller.start();
    await verified;
    await controller.stop();
  } else {
    for (;;) {
      const { phase } = await m.status();
      if (phase === 'verified') break;
      if (phase === 'pending' || phase === 'rolled-back') {
        await send({ type: 'stage', stage: 'ddl', phase });
        await m.expand();
      } else if (phase === 'expanded') {
        await send({ type: 'stage', stage: 'dual-write', phase });
        await m.startDualWrite();
      } else if (phase === 'dual-write' || phase === 'backfilling' || phase === 'paused') {
        await send({ type: 'stage', stage: 'backfill', phase });
        await m.backfill({ onProgress });
      } else if (phase === 'backfilled') {
        await send({ type: 'stage', stage: 'verify', phase });
        await m.verify({ batchSize: verifyBatch });
      } else {
        throw new Error(`kill-child: nothing to do in phase ${phase}`);
      }
    }
  }
  await send({ type: 'done', phase: (await m.status()).phase });
  await pf.close();
  await knex.destroy();
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    const e = error as { code?: string; message?: string };
    await send({ type: 'error', code: e?.code ?? 'none', message: String(e?.message ?? error) });
    process.exit(1);
  },
);
