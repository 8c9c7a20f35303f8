import { isPhaseflagError, type PhaseflagError, type TransitionDecision } from '@phaseflag/core';
import type { MigrationHandle } from '@phaseflag/postgres';
import { printUnderivable, underivableJson } from '../underivable-view.js';
import type { Command } from 'commander';
import { EXIT } from '../exit-codes.js';
import { formatNumber, type Output } from '../output.js';
import { action, integerOption, type ActionResult } from '../program.js';
import { openSession, type GlobalOptions } from '../runtime.js';
import { interruptSignal } from '../interrupt.js';

/** One command per engine transition a person may ask for by hand. Each refuses exactly as the engine does. */
interface StepCommand {
  name: string;
  description: string;
  options?: Array<[string, string]>;
  help?: string;
  run: (h: MigrationHandle, opts: Record<string, unknown>, signal: AbortSignal) => Promise<TransitionDecision>;
}

const STEPS: StepCommand[] = [
  {
    name: 'expand',
    description: 'add the new column online (and its index and check): pending/rolled-back → expanded',
    run: (h, _o, signal) => h.expand({ signal }),
  },
  {
    name: 'dual-write',
    description:
      'preflight the expression over the existing rows, install the sync trigger; services write both columns: expanded → dual-write',
    options: [
      [
        '--accept-preflight-failures',
        'go ahead although the preflight finds rows the expression cannot derive (they are recorded, stay NULL and block verify until fixed)',
      ],
    ],
    help: 'Rows the backfill expression cannot derive refuse the step (exit 3, PF_PREFLIGHT_FAILED, the first row named); `phaseflag plan <id> --preflight` lists them all.',
    run: (h, o) => h.startDualWrite({ acceptPreflightFailures: o.acceptPreflightFailures === true }),
  },
  {
    name: 'pause',
    description: 'pause the backfill: a running runner stops after its current batch, keeping its checkpoint',
    help: 'A `phaseflag backfill` running in another shell waits, paused, until `phaseflag resume`.',
    run: (h) => h.pause(),
  },
  {
    name: 'resume',
    description: 'resume a paused backfill (paused → backfilling)',
    help: 'A `phaseflag backfill` waiting in another shell carries on; otherwise run `phaseflag backfill <id>` (or let a controller run it).',
    run: (h) => h.resume(),
  },
  {
    name: 'read-new',
    description:
      'allow reads of the new column (per request, by the read-new flag); releases a read-old hold: verified → read-new',
    run: (h) => h.readNew(),
  },
  {
    name: 'read-old',
    description:
      'the emergency lever: send every read back to the old column whatever the read-new flag says, and hold them there until the flag goes off and on again or read-new runs: read-new → verified',
    run: (h) => h.readOld(),
  },
  {
    name: 'rollback',
    description:
      'abandon the migration before contract: reads and writes go back to the old column, then the new objects are dropped',
    options: [['--keep-new-column', 'keep the new column (and its data) even if phaseflag created it']],
    run: (h, o, signal) => h.rollback({ dropNewColumn: o.keepNewColumn !== true, signal }),
  },
  {
    name: 'contract',
    description: "irreversible: stop writing the old column, enforce the new column's constraints (needs --confirm)",
    options: [
      ['--confirm', 'confirm the irreversible step'],
      ['--drop-old-column', 'drop the old column as well'],
    ],
    help: 'Without --confirm nothing happens and the exit code is 3 (PF_CONFIRMATION_REQUIRED).',
    run: (h, o, signal) => h.contract({ confirm: o.confirm === true, dropOldColumn: o.dropOldColumn === true, signal }),
  },
];

export function registerSteps(program: Command): void {
  for (const step of STEPS) {
    const cmd = program
      .command(step.name)
      .argument('<id>', 'migration id (from the config)')
      .description(step.description);
    for (const [flags, text] of step.options ?? []) cmd.option(flags, text);
    if (step.help) cmd.addHelpText('after', `\n${step.help}`);
    cmd.action(action((out, opts, id: string) => runStep(out, opts, id, step)));
  }
  program
    .command('verify')
    .argument('<id>', 'migration id (from the config)')
    .description(
      'prove, row by row, that the new column equals the backfill expression; a clean run moves backfilled → verified',
    )
    .option('--batch-size <rows>', 'rows per read-only batch')
    .addHelpText(
      'after',
      '\nExit code 4 (PF_VERIFY_FAILED) when rows differ; the sample keys are printed (and in --json).',
    )
    .action(action(async (out, opts, id: string) => verify(out, opts, id)));
  program
    .command('repair')
    .argument('<id>', 'migration id (from the config)')
    .description(
      'after a failed verify or a shadow mismatch: re-derive the rows whose new column differs from the backfill expression, then verify again',
    )
    .option('--batch-size <rows>', 'rows per verify batch')
    .addHelpText(
      'after',
      '\nbackfilled (or verified, once shadow reads found a row that differs) → backfilling → backfilled → verified (when\n' +
        'the verify is clean; a new verified starts a new shadow count). Only rows that differ are rewritten,\n' +
        'in primary-key batches; an interrupted repair resumes with `phaseflag repair <id>` (or `phaseflag backfill <id>`).\n' +
        'Exit codes: 0 repaired and clean, 3 not allowed in this phase, 4 verify still finds rows that differ, 130 interrupted.',
    )
    .action(action(async (out, opts, id: string) => repair(out, opts, id)));
}

async function repair(out: Output, opts: GlobalOptions & Record<string, unknown>, id: string): Promise<ActionResult> {
  const verifyBatchSize = integerOption(opts.batchSize, '--batch-size', 1, 1_000_000, 'rows');
  const session = await openSession(opts, out);
  const interrupt = interruptSignal();
  try {
    const { handle } = session.migration(id);
    const started = Date.now();
    try {
      const r = await handle.repair({
        signal: interrupt.signal,
        ...(verifyBatchSize !== undefined ? { verifyBatchSize } : {}),
      });
      const phase = (await handle.status()).phase;
      const what = `${formatNumber(r.rowsRepaired)} row(s) re-derived of ${formatNumber(r.rowsScanned)} examined`;
      if (r.verify === null) {
        out.line(`${out.c.bold(id)}: repair stopped (${r.backfill.stoppedBy}) after ${what}; phase ${phase}`);
        out.result({
          migrationId: id,
          rowsRepaired: r.rowsRepaired,
          rowsScanned: r.rowsScanned,
          completed: false,
          stoppedBy: r.backfill.stoppedBy,
          phase,
        });
        return interrupt.signal.aborted ? EXIT.interrupted : EXIT.ok;
      }
      out.line(
        `${out.c.bold(id)}: ${what}; verify ${out.c.green('clean')} (${formatNumber(r.verify.rowsChecked)} rows) in ${Date.now() - started} ms; phase ${phase}`,
      );
      out.result({
        migrationId: id,
        rowsRepaired: r.rowsRepaired,
        rowsScanned: r.rowsScanned,
        completed: true,
        clean: true,
        rowsChecked: r.verify.rowsChecked,
        phase,
      });
      return EXIT.ok;
    } catch (error) {
      if (!isPhaseflagError(error, 'PF_VERIFY_FAILED')) throw error;
      return await reportDirtyVerify(out, handle, id, error, { completed: true });
    }
  } finally {
    interrupt.dispose();
    await session.close();
  }
}

async function runStep(
  out: Output,
  opts: GlobalOptions & Record<string, unknown>,
  id: string,
  step: StepCommand,
): Promise<ActionResult> {
  const session = await openSession(opts, out);
  const interrupt = interruptSignal();
  try {
    const { handle } = session.migration(id);
    const d = await step.run(handle, opts, interrupt.signal);
    out.line(`${out.c.bold(id)}: ${d.from} → ${out.c.green(d.to)}`);
    out.result({ migrationId: id, action: d.action, from: d.from, to: d.to, phase: (await handle.status()).phase });
    return EXIT.ok;
  } finally {
    interrupt.dispose();
    await session.close();
  }
}

async function verify(out: Output, opts: GlobalOptions & Record<string, unknown>, id: string): Promise<ActionResult> {
  const batchSize = integerOption(opts.batchSize, '--batch-size', 1, 1_000_000, 'rows');
  const session = await openSession(opts, out);
  const interrupt = interruptSignal();
  try {
    const { handle } = session.migration(id);
    const started = Date.now();
    try {
      const r = await handle.verify({ signal: interrupt.signal, ...(batchSize !== undefined ? { batchSize } : {}) });
      const phase = (await handle.status()).phase;
      out.line(
        `${out.c.bold(id)}: ${out.c.green('clean')}: ${formatNumber(r.rowsChecked)} rows checked in ${Date.now() - started} ms; phase ${phase}`,
      );
      out.result({
        migrationId: id,
        clean: true,
        rowsChecked: r.rowsChecked,
        mismatches: 0,
        nulls: r.nulls,
        sampleKeys: [],
        durationMs: r.durationMs,
        phase,
        underivable: { count: 0, rows: [] },
      });
      return EXIT.ok;
    } catch (error) {
      if (!isPhaseflagError(error, 'PF_VERIFY_FAILED')) throw error;
      return await reportDirtyVerify(out, handle, id, error, {});
    }
  } finally {
    interrupt.dispose();
    await session.close();
  }
}

/** A verify that found rows (from `verify` or the verify `repair` ends with): exit 4, the keys, the rows the expression cannot derive, the way out. */
async function reportDirtyVerify(
  out: Output,
  handle: MigrationHandle,
  id: string,
  error: PhaseflagError,
  extra: Record<string, unknown>,
): Promise<ActionResult> {
  const status = await handle.status();
  const v = status.record.verifyResult;
  out.error(error, false);
  out.note(`sample keys: ${JSON.stringify(v?.sampleKeys ?? [])}`);
  out.note(`once the cause is fixed: phaseflag repair ${id}   (re-derives the rows that differ, then verifies again)`);
  printUnderivable(out, status.underivable);
  out.result({
    migrationId: id,
    ...extra,
    clean: false,
    next: `phaseflag repair ${id}`,
    rowsChecked: v?.rowsChecked ?? null,
    mismatches: v?.mismatches ?? null,
    sampleKeys: v?.sampleKeys ?? [],
    phase: status.phase,
    underivable: underivableJson(status.underivable),
    error: { code: error.code, message: error.message, hint: error.hint, exitCode: EXIT.verifyFailed },
  });
  return EXIT.verifyFailed;
}
