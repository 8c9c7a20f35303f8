import { GuardRefusedError, type Phase } from '@phaseflag/core';
import type { BackfillKnobs, BackfillKnobsPatch, MigrationHandle } from '@phaseflag/postgres';
import type { Command } from 'commander';
import { BackfillView } from '../backfill-view.js';
import { CliError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { abortableSleep, interruptSignal } from '../interrupt.js';
import { formatNumber, type Output } from '../output.js';
import { action, type ActionResult } from '../program.js';
import { openSession, type GlobalOptions } from '../runtime.js';
import { readKeys } from '../keys.js';

const DONE_PHASES: readonly Phase[] = ['backfilled', 'verified', 'read-new', 'contracted'];

export function registerBackfill(program: Command): void {
  program
    .command('backfill')
    .argument('<id>', 'migration id (from the config)')
    .description(
      'run (or resume) the backfill in the foreground with a progress bar; Ctrl-C pauses it cleanly, a rerun resumes',
    )
    .option(
      '--set <knob=value>',
      'change a knob of the backfill (running or not) and exit; repeatable: batch-size=<n>|auto, throttle=on|off, delay-ms=<n>|default, pause=on|off',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--no-keys', 'do not read keys from the terminal')
    .option(
      '--no-reindex',
      'once the backfill completes, do not rebuild the indexes it bloated (REINDEX INDEX CONCURRENTLY, on by default)',
    )
    .addHelpText(
      'after',
      `
Keys while it runs on a terminal: p pause/resume, + / - double or halve the batch size, a adaptive size again,
t throttle on/off, q or Ctrl-C stop. From another shell: phaseflag backfill <id> --set batch-size=2000,
--set throttle=on, --set pause=on / pause=off (as phaseflag pause <id> / resume <id>). The running backfill applies a change before its
next batch. Exit codes: 0 complete, 3 not allowed in this phase, 130 interrupted (paused, resumable).`,
    )
    .action(
      action(async (out, opts, id: string) => {
        const sets = (opts.set as string[] | undefined) ?? [];
        return sets.length > 0 ? setKnobs(out, opts, id, sets) : runForeground(out, opts, id);
      }),
    );
}

/**
 * `batch-size=2000`, `throttle=on`, `pause=on`, … as a knob patch and the pause wanted (the phase: paused ⇄
 * backfilling, as `phaseflag pause`/`resume`); anything else is a usage error, found before anything changes.
 */
export function parseKnobs(sets: readonly string[]): { patch: BackfillKnobsPatch; pause?: boolean } {
  const patch: { -readonly [K in keyof BackfillKnobsPatch]: BackfillKnobsPatch[K] } = {};
  let pause: boolean | undefined;
  for (const s of sets) {
    const [k, v, ...rest] = s.split('=');
    const bad = () =>
      new CliError(
        'PF_USAGE_BAD_KNOB',
        `Cannot read --set ${s}.`,
        'Use batch-size=<1..1000000>|auto, throttle=on|off, delay-ms=<0..600000>|default, pause=on|off.',
        s,
      );
    const onOff = () => {
      if (!['on', 'off', 'true', 'false'].includes(v!)) throw bad();
      return v === 'on' || v === 'true';
    };
    if (v === undefined || rest.length > 0) throw bad();
    const int = (lo: number, hi: number) => {
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < lo || n > hi) throw bad();
      return n;
    };
    switch (k!.trim()) {
      case 'batch-size':
        patch.batchSize = v === 'auto' ? null : int(1, 1_000_000);
        break;
      case 'throttle':
        patch.throttle = onOff();
        break;
      case 'delay-ms':
        patch.pauseMs = v === 'default' ? null : int(0, 600_000);
        break;
      case 'pause':
        pause = onOff();
        break;
      default:
        throw bad();
    }
  }
  return pause === undefined ? { patch } : { patch, pause };
}

async function setKnobs(out: Output, opts: GlobalOptions, id: string, sets: readonly string[]): Promise<ActionResult> {
  const { patch, pause } = parseKnobs(sets);
  const session = await openSession(opts, out);
  try {
    const { handle } = session.migration(id);
    await handle.register(); // the knobs live in the migration's row (status no longer registers it)
    // The pause first: when the guard refuses it (not backfilling), no knob has changed either.
    if (pause !== undefined) {
      const { phase } = await handle.status();
      if (pause && phase !== 'paused') await handle.pause();
      if (!pause && phase === 'paused') await handle.resume();
    }
    const knobs = Object.keys(patch).length > 0 ? await handle.setBackfillKnobs(patch) : await handle.backfillKnobs();
    const { phase } = await handle.status();
    out.line(`${out.c.bold(id)}: backfill knobs now ${describeKnobs(knobs)} (phase ${phase})`);
    out.result({ migrationId: id, knobs, phase });
    return EXIT.ok;
  } finally {
    await session.close();
  }
}

function describeKnobs(k: BackfillKnobs): string {
  return `batch-size=${k.batchSize ?? 'auto'} throttle=${k.throttle ? 'on' : 'off'} delay-ms=${k.pauseMs ?? 'default'}`;
}

async function runForeground(
  out: Output,
  opts: GlobalOptions & Record<string, unknown>,
  id: string,
): Promise<ActionResult> {
  const session = await openSession(opts, out);
  const { handle } = session.migration(id);
  const tty = process.stderr.isTTY === true && !out.json;
  const interactive = tty && opts.keys !== false && process.stdin.isTTY === true;
  const view = new BackfillView(out, id, tty, interactive);
  const interrupt = interruptSignal(() => view.setState('stopping'));
  const keys = interactive ? readKeys((key) => onKey(key, handle, view, interrupt.trigger)) : undefined;
  const totals = { rowsUpdated: 0, rowsScanned: 0, batches: 0, runs: 0, reindexes: 0, reindexMs: 0 };
  const started = Date.now();
  const finish = async (stoppedBy: 'complete' | 'interrupted', code: number): Promise<number> => {
    view.stop();
    const status = await handle.status();
    const p = status.progress;
    out.result({
      migrationId: id,
      phase: status.phase,
      completed: stoppedBy === 'complete',
      stoppedBy,
      rowsDone: p?.rowsDone ?? 0,
      rowsEstimate: p?.rowsEstimate ?? 0,
      ...totals,
      durationMs: Date.now() - started,
      knobs: await handle.backfillKnobs(),
    });
    return code;
  };
  try {
    const initial = await handle.status().catch(() => null);
    if (initial && DONE_PHASES.includes(initial.phase)) {
      view.stop();
      out.line(`${out.c.bold(id)}: the backfill is complete already (phase ${initial.phase}).`);
      const v = initial.record.verifyResult;
      // Running the backfill again changes nothing after a failed verify: say what does.
      if (initial.phase === 'backfilled' && v && !v.clean)
        out.note(
          `the last verify found ${v.mismatches} row(s) that differ: \`phaseflag repair ${id}\` re-derives them and verifies again`,
        );
      return await finish('complete', EXIT.ok);
    }
    view.setKnobs(await handle.backfillKnobs().catch(() => view.knobs));
    for (;;) {
      view.setState('running');
      totals.runs++;
      const result = await handle.backfill({
        signal: interrupt.signal,
        onProgress: (p) => view.update(p),
        ...(opts.reindex === false ? { reindex: { enabled: false } } : {}),
      });
      totals.rowsUpdated += result.rowsUpdated;
      totals.rowsScanned += result.rowsScanned;
      totals.batches += result.batches;
      totals.reindexes += result.reindexes;
      totals.reindexMs += result.reindexMs;
      if (result.completed || DONE_PHASES.includes(result.phase)) {
        view.stop();
        out.line(
          `${out.c.bold(id)}: ${out.c.green('backfill complete')}: ${formatNumber(totals.rowsScanned)} rows examined, ${formatNumber(totals.rowsUpdated)} updated, ${totals.batches} batches in ${((Date.now() - started) / 1000).toFixed(1)} s${totals.reindexes > 0 ? ` (of which ${(totals.reindexMs / 1000).toFixed(1)} s rebuilding ${totals.reindexes} bloated index(es))` : ''}; phase ${result.phase}.`,
        );
        out.line(out.c.dim(`next: phaseflag verify ${id}`));
        return await finish('complete', EXIT.ok);
      }
      if (interrupt.signal.aborted) return await interrupted(out, handle, view, id, finish);
      if (result.phase !== 'paused') {
        view.stop();
        throw new GuardRefusedError(
          `The backfill of "${id}" stopped: the migration moved to ${result.phase} under it.`,
          {
            from: result.phase,
            action: 'backfill',
            value: result.phase,
            migrationId: id,
            hint: `Someone (or a controller) moved it; see phaseflag status ${id}.`,
          },
        );
      }
      view.setState('paused', interactive ? 'press p to resume' : `waiting: phaseflag resume ${id}`);
      const resumed = await waitWhilePaused(handle, interrupt.signal);
      if (!resumed) return await interrupted(out, handle, view, id, finish);
    }
  } finally {
    keys?.dispose();
    interrupt.dispose();
    view.stop();
    await session.close();
  }
}

/** Ctrl-C: the runner stopped after its batch; pause the phase so that nothing restarts it behind the operator's back. */
async function interrupted(
  out: Output,
  handle: MigrationHandle,
  view: BackfillView,
  id: string,
  finish: (s: 'interrupted', code: number) => Promise<number>,
): Promise<number> {
  const phase = (await handle.status()).phase;
  if (phase === 'backfilling') await handle.pause().catch(() => undefined);
  view.stop();
  out.note(
    `${out.err.yellow('paused')}: ${id} at ${view.summary()}. The checkpoint is kept; \`phaseflag backfill ${id}\` resumes it.`,
  );
  return finish('interrupted', EXIT.interrupted);
}

/** Waits until the phase leaves `paused` (true when it is `backfilling` again) or Ctrl-C (false). */
async function waitWhilePaused(handle: MigrationHandle, signal: AbortSignal): Promise<boolean> {
  for (;;) {
    if (signal.aborted) return false;
    const phase = (await handle.status()).phase;
    if (phase === 'backfilling') return true;
    if (phase !== 'paused') return true; // the next run reports what it finds
    await abortableSleep(250, signal);
  }
}

async function onKey(key: string, handle: MigrationHandle, view: BackfillView, stop: () => void): Promise<void> {
  try {
    switch (key) {
      case 'p':
        if (view.isPaused) {
          await handle.resume();
          view.note('resumed');
        } else {
          view.note('pausing after this batch…');
          await handle.pause();
        }
        return;
      case '+':
      case '=':
      case '-':
      case '_': {
        const current = view.batchSize ?? 1000;
        const next =
          key === '+' || key === '=' ? Math.min(1_000_000, current * 2) : Math.max(1, Math.floor(current / 2));
        view.setKnobs(await handle.setBackfillKnobs({ batchSize: next }));
        view.note(`batch size ${next}`);
        return;
      }
      case 'a':
        view.setKnobs(await handle.setBackfillKnobs({ batchSize: null }));
        view.note('adaptive batch size');
        return;
      case 't': {
        const on = !view.knobs.throttle;
        view.setKnobs(await handle.setBackfillKnobs({ throttle: on }));
        view.note(on ? 'throttle on' : 'throttle off');
        return;
      }
      case 'q':
      case '\u0003':
        stop();
        return;
      default:
    }
  } catch (error) {
    view.note(`${key}: ${(error as Error).message}`);
  }
}
