import type { MigrationPlan, PreflightResult } from '@phaseflag/postgres';
import type { Command } from 'commander';
import { formatDuration, formatNumber, type Output } from '../output.js';
import { action } from '../program.js';
import { openSession } from '../runtime.js';

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .argument('<id>', 'migration id (from the config)')
    .description(
      'the exact SQL of every phase, the lock each statement takes and for how long at most; nothing is executed',
    )
    .option('--drop-old-column', 'plan contract with the old column dropped')
    .option(
      '--preflight',
      'also evaluate the expression (and the reverse round trip) over every existing row, read only, and list the rows that fail',
    )
    .action(
      action(async (out, opts, id: string) => {
        const session = await openSession(opts, out, { install: false });
        try {
          const { handle } = session.migration(id);
          const plan = await handle.plan({ dropOldColumn: opts.dropOldColumn === true });
          printPlan(out, plan);
          if (!opts.preflight) {
            out.result(plan);
            return;
          }
          const preflight = await handle.preflight();
          printPreflight(out, preflight);
          out.result({ ...plan, preflight });
        } finally {
          await session.close();
        }
      }),
    );
}

function printPlan(out: Output, plan: MigrationPlan): void {
  const { c } = out;
  const old = plan.oldColumn
    ? `${plan.oldColumn.name} ${plan.oldColumn.type}${plan.oldColumnDropped ? ' (dropped by contract)' : ''}`
    : '(none)';
  out.line(
    `${c.bold(plan.migrationId)}  ${plan.table.schema}.${plan.table.name}: ${old} → ${plan.newColumn.name} ${plan.newColumn.type}${plan.newColumn.exists ? ' (exists)' : ''}`,
  );
  out.line(
    `intent: ${plan.intent}${plan.intent === 'derive' ? ` (${plan.newColumn.name} stays beside ${plan.oldColumn?.name ?? 'its source'}, derived by the sync trigger)` : ''}`,
  );
  out.line(
    `rows walked by: ${plan.key.kind}${plan.key.name === null ? '' : ` "${plan.key.name}"`} (${plan.key.columns.join(', ')})`,
  );
  const d = plan.oldColumnDefault;
  if (d)
    out.line(
      `old column default: ${d.sql} → ${d.carried === null ? `not carried over (${d.why})` : `${plan.newColumn.name} DEFAULT ${d.carried} at contract`}`,
    );
  out.line(
    c.dim(
      `~${plan.rowsEstimate.toLocaleString('en-US')} rows · lock_timeout ${plan.ddl.lockTimeoutMs} ms × ${plan.ddl.maxAttempts} attempts · nothing below is executed`,
    ),
  );
  for (const phase of plan.phases) {
    out.line('');
    const all = formatDuration(phase.maxLockWaitMs / 1000);
    const blocking = formatDuration(phase.maxBlockingLockWaitMs / 1000);
    const wait =
      phase.maxLockWaitMs === 0
        ? 'no lock wait'
        : phase.maxBlockingLockWaitMs === phase.maxLockWaitMs
          ? `waits ≤ ${all} for locks in all`
          : phase.maxBlockingLockWaitMs === 0
            ? `waits ≤ ${all} for locks in all, none of them ahead of application queries`
            : `waits ≤ ${all} for locks in all, ≤ ${blocking} of it ahead of application queries (lock_timeout per attempt)`;
    out.line(`${c.bold(c.cyan(phase.phase))}  ${phase.summary}`);
    out.line(c.dim(`  strongest lock: ${phase.strongestLock} · ${wait}`));
    phase.statements.forEach((s, i) => {
      const lock =
        s.lock === 'ACCESS EXCLUSIVE'
          ? c.red(s.lock)
          : s.lock === 'NONE' || s.lock === 'ACCESS SHARE'
            ? c.green(s.lock)
            : c.yellow(s.lock);
      const others = (s.otherLocks ?? []).map((o) => `, ${o.lock} on ${o.table.schema}.${o.table.name}`).join('');
      const per =
        s.maxLockWaitMs > 0
          ? `≤ ${formatDuration(s.maxLockWaitMs / 1000)}${s.maxDurationMs > s.maxLockWaitMs ? ` (gives up by ${formatDuration(s.maxDurationMs / 1000)} with back-off)` : ''}`
          : '-';
      out.line(
        `  ${i + 1}. [${s.step}] ${lock}${others}, lock wait ${per}${s.transactional ? '' : ', outside a transaction'} — ${s.description}`,
      );
      for (const line of s.sql.trim().split('\n')) out.line(`       ${c.dim(line)}`);
    });
    for (const n of phase.notes) out.line(`  ${c.dim('note:')} ${n}`);
  }
}

function printPreflight(out: Output, p: PreflightResult): void {
  const { c } = out;
  out.line('');
  const roundTrip =
    p.roundTripMismatches === null
      ? 'no reverse to round-trip'
      : `${formatNumber(p.roundTripMismatches)} do not round-trip (warning)`;
  out.line(
    `${c.bold(c.cyan('preflight'))}  ${formatNumber(p.rowsChecked)} rows in ${p.durationMs} ms: ` +
      `${p.failures === 0 ? c.green('0 cannot be derived') : c.red(`${formatNumber(p.failures)} cannot be derived`)}, ${roundTrip}${p.complete ? '' : c.yellow(' (aborted)')}`,
  );
  for (const r of p.failedRows)
    out.line(`  ${c.red('fails')}  key ${JSON.stringify(r.key)}  value ${JSON.stringify(r.oldValue)}  ${r.error}`);
  for (const r of p.roundTripRows) {
    out.line(
      `  ${c.yellow('round trip')}  key ${JSON.stringify(r.key)}  value ${JSON.stringify(r.oldValue)}  ${r.error ?? `→ ${JSON.stringify(r.newValue)} → ${JSON.stringify(r.roundTrip)}`}`,
    );
  }
  if (p.failures > p.failedRows.length)
    out.line(c.dim(`  … and ${formatNumber(p.failures - p.failedRows.length)} more that fail`));
  if (p.failures > 0)
    out.line(
      c.dim(
        '  dual-write refuses until these rows are fixed, the expression changed, or they are accepted with --accept-preflight-failures',
      ),
    );
}
