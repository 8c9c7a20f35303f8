import type { Command } from 'commander';
import type { ControllerMigrationStatus } from '@phaseflag/postgres';
import { EXIT } from '../exit-codes.js';
import { abortableSleep, interruptSignal } from '../interrupt.js';
import { formatNumber } from '../output.js';
import { action, integerOption } from '../program.js';
import { flagsUnknownError, openFlagSource, openSession, unleashSettings } from '../runtime.js';

export function registerRun(program: Command): void {
  program
    .command('run')
    .argument('<id>', 'migration id (from the config)')
    .description(
      'run the controller in the foreground until the migration reaches the phase its flags ask for (or Ctrl-C)',
    )
    .option('--interval <ms>', 'how often to re-check flags and the database', '1000')
    .option('--watch', 'keep running after the migration has settled (until Ctrl-C)')
    .option('--timeout <seconds>', 'give up (exit 3) when not settled by then')
    .option('--drop-old-column', 'contract also drops the old column')
    .option(
      '--no-reindex',
      'once the backfill completes, do not rebuild the indexes it bloated (REINDEX INDEX CONCURRENTLY, on by default)',
    )
    .addHelpText(
      'after',
      `
Reads the flags with UNLEASH_URL and UNLEASH_API_TOKEN (a client token). Exit codes: 0 settled (the flags ask for
nothing more), 3 the flags ask for something the database refuses (the reason is printed) or --timeout passed,
4 the automatic verify found rows that differ, 5 Unleash or Postgres unreachable, 130 interrupted (a running
backfill stops after its batch and resumes later).`,
    )
    .action(
      action(async (out, opts, id: string) => {
        const interval = integerOption(opts.interval, '--interval', 10, 3_600_000, 'milliseconds')!;
        const timeoutS = integerOption(opts.timeout, '--timeout', 1, 604_800, 'seconds');
        const session = await openSession(opts, out);
        const settings = unleashSettings(opts, session.config);
        const flags = await openFlagSource(settings, {
          required: true,
          refreshIntervalMs: Math.min(interval, 5000),
          waitMs: 15_000,
        });
        const interrupt = interruptSignal(() => out.note('stopping: a running backfill stops after its batch…'));
        try {
          if (!flags!.known) throw flagsUnknownError(settings, flags!, 15_000);
          const { handle } = session.migration(id);
          let lastRows = -1;
          const controller = session.pf.controller(handle, {
            flags: flags!.source,
            intervalMs: interval,
            dropOldColumn: opts.dropOldColumn === true,
            instanceId: `phaseflag-cli-${process.pid}`,
            backfill: {
              ...(opts.reindex === false ? { reindex: { enabled: false } } : {}),
              onProgress: (p) => {
                if (p.rowsDone - lastRows < Math.max(1, p.rowsEstimate / 20) && !p.done) return;
                lastRows = p.rowsDone;
                out.note(
                  `  backfill: ${formatNumber(p.rowsDone)}/${formatNumber(p.rowsEstimate)} rows${p.rowsPerSecond ? `, ${formatNumber(p.rowsPerSecond)} rows/s` : ''}`,
                );
              },
            },
          });
          const unwatch = handle.watch((snap) => out.note(`${out.err.bold(id)}: phase ${out.err.cyan(snap.phase)}`));
          const deadline = timeoutS !== undefined ? Date.now() + timeoutS * 1000 : Infinity;
          let reported = '';
          let status: ControllerMigrationStatus | undefined;
          try {
            await controller.start();
            for (;;) {
              if (interrupt.signal.aborted) break;
              [status] = await controller.reconcile();
              const s = status!;
              const line = !s.leader
                ? 'another controller leads this migration; waiting'
                : s.lastError
                  ? `error: ${s.lastError}`
                  : describeStep(s);
              if (line !== reported) out.note(`${out.err.dim(new Date().toISOString())} ${line}`);
              reported = line;
              if (!opts.watch && s.leader && !s.backfillRunning && s.lastError === null && settled(s)) break;
              if (Date.now() > deadline) break;
              await abortableSleep(interval, interrupt.signal);
            }
          } finally {
            await controller.stop();
            unwatch();
          }
          const final = await handle.status();
          const step = status?.lastStep ?? null;
          out.result({
            migrationId: id,
            phase: final.phase,
            settled: status ? settled(status) : false,
            lastStep: step,
            interrupted: interrupt.signal.aborted,
          });
          out.line(
            `${out.c.bold(id)}: phase ${out.c.cyan(final.phase)}${step?.kind === 'refuse' ? ` — refused ${step.action}: ${step.reason}` : ''}`,
          );
          if (interrupt.signal.aborted) return EXIT.interrupted;
          if (step?.kind === 'refuse') {
            out.note(`hint: ${step.hint}`);
            return EXIT.refused;
          }
          const verify = final.record.verifyResult;
          if (final.phase === 'backfilled' && verify && !verify.clean) {
            out.note(
              `verify found ${verify.mismatches} row(s) that differ (sample keys ${JSON.stringify(verify.sampleKeys.slice(0, 5))}); fix the cause, then phaseflag backfill ${id} and phaseflag verify ${id}`,
            );
            return EXIT.verifyFailed;
          }
          if (status && !settled(status)) {
            out.note(`not settled within --timeout ${String(opts.timeout)} s`);
            return EXIT.refused;
          }
          return EXIT.ok;
        } finally {
          interrupt.dispose();
          flags?.close();
          await session.close();
        }
      }),
    );
}

/** Nothing left to do by the flags: waiting for a flag, final, or refused (which waits for a human). Unknown flags are not settled. */
function settled(s: ControllerMigrationStatus): boolean {
  const step = s.lastStep;
  if (!step) return false;
  if (step.kind === 'refuse') return true;
  return step.kind === 'none' && !(step.unknown && step.unknown.length > 0);
}

function describeStep(s: ControllerMigrationStatus): string {
  const step = s.lastStep;
  const phase = s.phase ?? '?';
  if (!step) return `phase ${phase}`;
  if (step.kind === 'act') return `phase ${phase}: ${step.action} (${step.why})`;
  if (step.kind === 'refuse') return `phase ${phase}: refused ${step.action}: ${step.reason}`;
  const unknown = step.unknown?.length
    ? ` (unknown to Unleash: not provisioned yet? phaseflag provision ${s.migrationId}; or Unleash unreachable)`
    : '';
  return `phase ${phase}: ${step.why}${s.backfillRunning ? ' (backfill running)' : ''}${unknown}`;
}
