import type { Command } from 'commander';
import { formatDuration, formatNumber, table, type Output } from '../output.js';
import { action, integerOption } from '../program.js';
import { flagsUnknownError, openFlagSource, openSession, unleashSettings } from '../runtime.js';
import { findMigration } from '../config.js';
import { collectStatus, storedOnly, type MigrationStatusJson, type StoredOnlyJson } from '../status-model.js';
import { underivableLines } from '../underivable-view.js';
import { driftStatusText } from '../drift-view.js';
import { shadowInstancesTable, shadowText } from '../shadow-view.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .argument('[id]', 'one migration (default: every migration in the config)')
    .description(
      'phase, flags as Unleash has them, guards and why they hold or not, backfill progress, live instances, shadow reads per instance; also what the state store holds that the config does not (read-only)',
    )
    .option('--wait-flags <ms>', "how long to wait for Unleash's first answer", '5000')
    .action(
      action(async (out, opts, id: string | undefined) => {
        const waitMs = integerOption(opts.waitFlags, '--wait-flags', 0, 600_000, 'milliseconds')!;
        // Read-only: no install or upgrade (a missing or older store is an error saying so), no registration.
        const session = await openSession(opts, out, { install: false });
        const settings = unleashSettings(opts, session.config);
        let flags: Awaited<ReturnType<typeof openFlagSource>> = null;
        try {
          const store = await session.pf.stateStore();
          if (!store.installed)
            out.note(
              out.err.yellow(
                `The state store is not installed (schema "${store.schema}"): every migration is pending. \`phaseflag install\` installs it.`,
              ),
            );
          const stored = store.installed ? await session.pf.storedMigrations() : [];
          const declared = new Set(session.config.migrations.map((m) => m.id));
          const notInConfig = storedOnly(stored, declared).filter((m) => !id || m.id === id);
          // An id only the store knows is shown as such; any other unknown id is the usual usage error.
          if (id && !declared.has(id) && notInConfig.length === 0) findMigration(session.config, id);
          const ids = id ? (declared.has(id) ? [id] : []) : [...declared];
          const handles = ids.map((x) => session.migration(x).handle);
          if (handles.length > 0) flags = await openFlagSource(settings, { waitMs });
          const source = flags?.known ? flags.source : null;
          if (flags?.rejectedStatus)
            out.note(
              out.err.yellow(`${flagsUnknownError(settings, flags, waitMs).message} Flags are shown as unknown.`),
            );
          else if (flags && !flags.known)
            out.note(out.err.yellow('Unleash did not answer in time: flags are shown as unknown.'));
          const migrations: MigrationStatusJson[] = [];
          for (const h of handles) migrations.push(await collectStatus(h, source, store.installed));
          migrations.forEach((m, i) => {
            if (i > 0) out.line('');
            render(out, m, flags !== null);
          });
          if (notInConfig.length > 0) renderStoredOnly(out, notInConfig, migrations.length > 0);
          out.result({ migrations, notInConfig, stateStore: store });
        } finally {
          flags?.close();
          await session.close();
        }
      }),
    );
}

function renderStoredOnly(out: Output, list: StoredOnlyJson[], gap: boolean): void {
  const { c } = out;
  if (gap) out.line('');
  out.line(c.bold(c.yellow('In the state store, not in the config:')));
  const t = table(out, { head: ['migration', 'table', 'columns', 'phase', 'sync trigger', 'updated'] });
  for (const m of list)
    t.push([
      m.id,
      m.table,
      `${m.oldColumn ?? '(none)'} → ${m.newColumn}`,
      `${m.phase} (v${m.version})`,
      m.syncTriggerInstalled ? c.yellow('on the table') : c.dim('none'),
      `${m.updatedAt ?? '-'}${m.updatedBy ? `\nby ${m.updatedBy}` : ''}`,
    ]);
  out.line(t.toString());
  out.line(
    c.dim(
      'Declare them in the config again to act on them (e.g. roll back); `phaseflag history <id>` shows their log.',
    ),
  );
}

function onOff(out: Output, v: boolean | null, fullyOn: boolean | null): string {
  if (v === null) return out.c.dim('unknown');
  if (!v) return out.c.yellow('off');
  return fullyOn ? out.c.green('on (100%)') : out.c.green('on (partial)');
}

function render(out: Output, m: MigrationStatusJson, unleashConfigured: boolean): void {
  const { c } = out;
  const head = (s: string) => c.bold(s);
  out.line(
    `${c.bold(m.id)}  ${m.table}: ${m.oldColumn ?? '(none)'}${m.oldColumnDropped ? c.dim(' (dropped)') : ''} → ${m.newColumn}`,
  );
  if (m.error) {
    out.line(`${c.red(m.error.code)}: ${m.error.message}`);
    if (m.error.hint) out.line(c.dim(`hint: ${m.error.hint}`));
    if (m.drift) out.line(`${c.bold('drift')}\n${driftStatusText(out, m.drift)}`);
    return;
  }
  const summary = table(out);
  summary.push(
    {
      [head('phase')]:
        `${c.cyan(m.phase)}${c.dim(` (v${m.version}${m.updatedBy ? `, by ${m.updatedBy}` : ''}${m.updatedAt ? ` at ${m.updatedAt}` : ''})`)}${m.pausedReason ? `\n${c.yellow(m.pausedReason)}` : ''}`,
    },
    {
      [head('flags')]: unleashConfigured
        ? m.flags.map((f) => `${f.name}: ${onOff(out, f.enabled, f.fullyOn)}`).join('\n')
        : c.dim('Unleash not configured (UNLEASH_URL, UNLEASH_API_TOKEN)'),
    },
    { [head('backfill')]: backfillText(out, m) },
    ...(m.readsHeld
      ? [
          {
            [head('reads held')]:
              `${c.yellow('on the old column by read-old')}${c.dim(` since ${m.readsHeld.since}`)}\n${c.dim('turn the read-new flag off and on again, or run `phaseflag read-new`')}`,
          },
        ]
      : []),
    {
      [head('verify')]: m.verify
        ? `${m.verify.clean ? c.green('clean') : c.red(`${m.verify.mismatches} mismatches`)} over ${formatNumber(m.verify.rowsChecked)} rows${m.verify.at ? c.dim(` at ${m.verify.at}`) : ''}`
        : c.dim('not run'),
    },
  );
  if (m.underivable.count > 0) summary.push({ [head('underivable')]: underivableLines(out, m.underivable).join('\n') });
  if (m.drift) summary.push({ [head('drift')]: driftStatusText(out, m.drift) });
  if (m.shadow) summary.push({ [head('shadow reads')]: shadowText(out, m.shadow) });
  if (m.next) {
    const text =
      m.next.kind === 'act'
        ? `${c.green(m.next.action ?? '')}: ${m.next.why}`
        : m.next.kind === 'refuse'
          ? `${c.red(`refused ${m.next.action}`)}: ${m.next.why}`
          : m.next.why;
    summary.push({ [head('by the flags')]: text });
  }
  out.line(summary.toString());

  if (m.guards.length > 0) {
    const guards = table(out, {
      head: ['next step', 'to', 'guard', 'why'],
      wordWrap: true,
      colWidths: [18, 13, 7, whyWidth(m.guards)],
    });
    for (const g of m.guards)
      guards.push([
        g.action,
        g.to,
        g.allowed ? c.green('holds') : c.red('no'),
        [g.reason, g.hint].filter(Boolean).join('\n') || '-',
      ]);
    out.line(guards.toString());
  }
  if (m.instances.length > 0) {
    const inst = table(out, { head: ['instance', 'phase', 'live', 'writes', 'reads', 'last seen'] });
    for (const i of m.instances) {
      const writes = [i.writesOld ? 'old' : '', i.writesNew ? 'new' : ''].filter(Boolean).join('+') || '-';
      const reads = [i.readsOld ? 'old' : '', i.readsNew ? 'new' : ''].filter(Boolean).join('+') || '-';
      const age = (Date.now() - Date.parse(i.lastSeen)) / 1000;
      inst.push([
        i.instanceId,
        i.phase,
        i.live ? c.green('yes') : c.dim('stale'),
        writes,
        reads,
        Number.isFinite(age) ? `${formatDuration(age)} ago` : String(i.lastSeen),
      ]);
    }
    out.line(inst.toString());
  } else {
    out.line(c.dim('no service instance has reported'));
  }
  // Kept after an instance stops (its comparisons happened): listed whether it still heartbeats or not.
  if (m.shadow && m.shadow.instances.length > 0) out.line(shadowInstancesTable(out, m.shadow));
}

/**
 * The reasons wrap in a column as wide as the longest one needs, at most 70 characters, and narrower on a terminal
 * that cannot fit that (the other three columns and the borders take 51).
 */
function whyWidth(guards: MigrationStatusJson['guards']): number {
  const longest = Math.max(3, ...guards.flatMap((g) => [g.reason, g.hint]).map((t) => t?.length ?? 0)) + 2;
  const fits = process.stdout.isTTY && process.stdout.columns ? process.stdout.columns - 51 : Infinity;
  return Math.max(20, Math.min(70, longest, fits));
}

function backfillText(out: Output, m: MigrationStatusJson): string {
  const b = m.backfill;
  if (!b) return out.c.dim('not started');
  const knobs = [
    b.knobs.batchSize !== null ? `batch ${b.knobs.batchSize}` : '',
    b.knobs.throttle ? 'throttled by operator' : '',
    b.knobs.pauseMs !== null ? `delay ${b.knobs.pauseMs} ms` : '',
  ].filter(Boolean);
  return (
    `${formatNumber(b.rowsDone)} / ${formatNumber(b.rowsEstimate)} rows (${b.percent}%)${b.done ? out.c.green(' done') : ''}` +
    `${b.rowsPerSecond !== null ? `, ${formatNumber(b.rowsPerSecond)} rows/s average` : ''}${!b.done && b.etaSeconds !== null && m.phase === 'backfilling' ? `, ETA ${formatDuration(b.etaSeconds)}` : ''}${!b.done && m.phase === 'paused' ? out.c.yellow(', paused') : ''}` +
    `${b.runner ? `\nrunning in backend ${b.runner.pid}${b.runner.applicationName ? ` (${b.runner.applicationName})` : ''}` : ''}` +
    `${knobs.length > 0 ? `\nknobs: ${knobs.join(', ')}` : ''}`
  );
}
