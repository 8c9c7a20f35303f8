import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSuiteSchema, holdsFor, waitFor, type Suite } from '@phaseflag/testkit';
import { CLI, createOrders, ordersConfig, phaseOf, rangeTotals, workdir, wrongRows, type Workdir } from './support.js';

/**
 * The backfill on a real terminal: tmux runs it in a pane (a TTY for stdin and stderr), send-keys presses keys,
 * capture-pane reads the screen. tmux is installed the way CI would (apt-get) when missing; the suite is skipped,
 * saying why, only when that is impossible.
 */
function ensureTmux(): string | null {
  if (spawnSync('tmux', ['-V']).status === 0) return null;
  const root = process.getuid?.() === 0;
  const apt = spawnSync('sh', ['-c', 'command -v apt-get']).status === 0;
  if (root && apt) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['install', '-y', '-qq', 'tmux'], { stdio: 'ignore', timeout: 120_000, env });
    if (spawnSync('tmux', ['-V']).status !== 0) {
      spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq tmux'], {
        stdio: 'ignore',
        timeout: 180_000,
        env,
      });
    }
  }
  return spawnSync('tmux', ['-V']).status === 0
    ? null
    : `tmux is not installed and could not be installed (${root ? 'apt-get failed' : 'not root'}); install tmux to run the terminal tests`;
}

describe('phaseflag backfill on a terminal (tmux)', function () {
  this.timeout(120_000);
  let suite: Suite;
  let w: Workdir;
  const socket = `pf-cli-test-${randomBytes(3).toString('hex')}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const screen = (session: string) => tmux('capture-pane', '-p', '-t', session);
  const waitScreen = async (session: string, pattern: RegExp, description: string, timeoutMs = 20_000) => {
    try {
      await waitFor(() => pattern.test(screen(session)), { timeoutMs, intervalMs: 100, description });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- screen ---\n${screen(session)}`);
    }
    return screen(session);
  };
  /** Runs `phaseflag backfill` in a new tmux session, then prints its exit code and waits (so the pane stays readable). */
  const startBackfill = (session: string) => {
    const script = join(w.dir, `${session}.sh`);
    const env = Object.entries(w.env)
      .map(([k, v]) => `export ${k}='${v}'`)
      .join('\n');
    writeFileSync(
      script,
      `${env}\nunset NO_COLOR FORCE_COLOR\ncd '${w.dir}'\n'${process.execPath}' '${CLI}' backfill orders-amount\necho "EXIT=$?"\nsleep 600\n`,
    );
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '12', `sh '${script}'`);
  };

  before(async function () {
    const skip = ensureTmux();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    suite = await createSuiteSchema('cli terminal');
    w = workdir(suite);
    w.writeConfig(
      ordersConfig(suite.schema, 'orders-amount', '{ size: 50, minSize: 10, targetBatchMs: 0, pauseMs: 0 }'),
    );
    await createOrders(suite, 4000);
    for (const args of [
      ['expand', 'orders-amount'],
      ['dual-write', 'orders-amount'],
      ['backfill', 'orders-amount', '--set', 'delay-ms=80'],
    ]) {
      const r = await w.run(args);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    try {
      tmux('kill-server');
    } catch {
      // no server was started
    }
    // kill-server leaves its socket file behind.
    rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
    w?.remove();
    await suite?.cleanup();
  });

  it('shows a progress bar with the key help; + doubles the batch size, p pauses and resumes, t throttles, Ctrl-C pauses (130), a rerun completes', async () => {
    startBackfill('first');
    let s = await waitScreen(
      'first',
      /orders-amount .*\d+% \| [\d,]+\/4,000 rows \| [\d,-]+ rows\/s \| ETA \S+ \| batch 50/,
      'the progress bar',
    );
    assert.match(
      s,
      /p pause\/resume · \+\/- batch size · a auto size · t throttle on\/off · q or Ctrl-C stop \(resumable\)/,
    );
    assert.match(s, /running · delay 80 ms/);

    tmux('send-keys', '-t', 'first', '+');
    s = await waitScreen('first', /batch 100 \(fixed\)/, 'the doubled batch size on screen');
    const knobs = (
      await suite.knex.raw('SELECT backfill_overrides FROM ??.migrations WHERE id = ?', [
        suite.stateSchema,
        'orders-amount',
      ])
    ).rows[0].backfill_overrides;
    assert.equal(knobs.batchSize, 100);
    const before = (await rangeTotals(suite, 'orders-amount')).batches;
    await waitFor(async () => (await rangeTotals(suite, 'orders-amount')).batches >= before + 2, {
      timeoutMs: 10_000,
      description: 'two more batches',
    });
    const sizes = (
      await suite.knex.raw(
        "SELECT reason FROM ??.events WHERE migration_id = ? AND action = 'set-knobs' ORDER BY id DESC LIMIT 1",
        [suite.stateSchema, 'orders-amount'],
      )
    ).rows[0].reason;
    assert.match(sizes, /"batchSize":100/);

    tmux('send-keys', '-t', 'first', 'p');
    s = await waitScreen('first', /PAUSED.*press p to resume/, 'PAUSED on screen');
    assert.equal(await phaseOf(suite, 'orders-amount'), 'paused');
    const held = (await rangeTotals(suite, 'orders-amount')).rowsDone;
    await holdsFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone === held, 500, {
      description: 'no batch while paused',
    });
    assert.equal((await rangeTotals(suite, 'orders-amount')).rowsDone, held, 'no batch while paused');

    tmux('send-keys', '-t', 'first', 'p');
    await waitFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone > held, {
      timeoutMs: 10_000,
      description: 'rows to move again after resume',
    });
    assert.equal(await phaseOf(suite, 'orders-amount'), 'backfilling');

    tmux('send-keys', '-t', 'first', 't');
    await waitScreen('first', /THROTTLED \(operator\)/, 'THROTTLED on screen');
    // The screen says THROTTLED once the knob is stored; the runner hears of it through NOTIFY, and a batch in
    // flight may still commit: wait until the count holds still, then watch it stay.
    let last = -1;
    const throttled =
      (await waitFor(
        async () => {
          const now = (await rangeTotals(suite, 'orders-amount')).rowsDone;
          const settled = now === last;
          last = now;
          return settled ? now + 1 : undefined; // + 1: a count of 0 rows would read as "not yet"
        },
        { timeoutMs: 10_000, intervalMs: 300, description: 'the backfill to hold still' },
      )) - 1;
    await holdsFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone === throttled, 700, {
      description: 'no batch while throttled',
    });
    assert.equal((await rangeTotals(suite, 'orders-amount')).rowsDone, throttled, 'no batch while throttled');
    tmux('send-keys', '-t', 'first', 't');
    await waitFor(async () => (await rangeTotals(suite, 'orders-amount')).rowsDone > throttled, {
      timeoutMs: 10_000,
      description: 'rows to move again after the throttle',
    });

    tmux('send-keys', '-t', 'first', 'C-c');
    s = await waitScreen('first', /EXIT=130/, 'exit code 130');
    assert.match(s, /paused: orders-amount at [\d,]+\/4,000 rows .*`phaseflag backfill orders-amount` resumes it/);
    assert.equal(await phaseOf(suite, 'orders-amount'), 'paused');
    const stopped = await rangeTotals(suite, 'orders-amount');
    assert.ok(stopped.rowsDone < 4000, `interrupted part-way (${stopped.rowsDone})`);

    startBackfill('second');
    s = await waitScreen('second', /EXIT=0/, 'the rerun to complete', 60_000);
    assert.match(s, /backfill complete: [\d,]+ rows examined/);
    assert.match(s, /100% \| 4,000\/4,000 rows/);
    assert.equal(await phaseOf(suite, 'orders-amount'), 'backfilled');
    assert.equal(
      (await rangeTotals(suite, 'orders-amount')).rowsDone,
      4000,
      'every row counted once: none skipped, none redone',
    );
    assert.equal(await wrongRows(suite), 0);
  });

  it('init on a terminal asks whether the new column replaces the old one or is derived from it, and writes the answer', async () => {
    const fresh = workdir(suite);
    try {
      const script = join(fresh.dir, 'init.sh');
      writeFileSync(
        script,
        `unset NO_COLOR FORCE_COLOR\ncd '${fresh.dir}'\n'${process.execPath}' '${CLI}' init --id users-email --table users --old-column email --new-column email_lower --type text --backfill 'lower(email)'\necho "EXIT=$?"\nsleep 600\n`,
      );
      tmux('new-session', '-d', '-s', 'init', '-x', '160', '-y', '12', `sh '${script}'`);
      await waitScreen('init', /\[replace\/derive\] \(replace\)/, 'the question');
      tmux('send-keys', '-t', 'init', 'maybe', 'Enter');
      await waitScreen('init', /\(replace\) maybe[\s\S]*\[replace\/derive\] \(replace\)/, 'the question asked again');
      tmux('send-keys', '-t', 'init', 'derive', 'Enter');
      await waitScreen('init', /EXIT=0/, 'init to finish');
      const source = readFileSync(join(fresh.dir, 'migrations', 'users-email.ts'), 'utf8');
      assert.match(source, /intent: 'derive'/);
    } finally {
      fresh.remove();
    }
  });
});
