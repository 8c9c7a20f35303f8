import cliProgress from 'cli-progress';
import type { BackfillKnobs, BackfillProgress } from '@phaseflag/postgres';
import { formatDuration, formatNumber, type Output } from './output.js';

export type ViewState = 'starting' | 'running' | 'paused' | 'stopping';

export const KEY_HELP =
  'p pause/resume · +/- batch size · a auto size · t throttle on/off · q or Ctrl-C stop (resumable)';

/**
 * How a running backfill shows itself. On a terminal: a progress bar (rows done, rows/s, ETA, batch size) with a
 * status line and the key help under it, redrawn in place on stderr. Elsewhere: a plain line on stderr at most
 * once a second, and one per event. stdout is left to the result (and --json).
 */
export class BackfillView {
  private multi: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private line: cliProgress.SingleBar | undefined;
  private help: cliProgress.SingleBar | undefined;
  private lastPlain = 0;
  private last: BackfillProgress | undefined;
  private state: ViewState = 'starting';
  private message = '';
  knobs: BackfillKnobs = { batchSize: null, throttle: false, pauseMs: null };
  batchSize: number | undefined;

  constructor(
    private readonly out: Output,
    private readonly id: string,
    readonly tty: boolean,
    private readonly keys: boolean,
  ) {
    if (!tty) return;
    const c = out.err;
    this.multi = new cliProgress.MultiBar(
      {
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        fps: 10,
        barsize: 30,
        format: ` ${c.bold(id)} {bar} {percentage}% | {done}/{estimate} rows | {rate} rows/s | ETA {eta_text} | batch {batch}`,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multi.create(1, 0, this.payload());
    this.line = this.multi.create(1, 0, { text: '' }, { format: ' {text}' });
    // Lines of their own: MultiBar counts one line per bar when it redraws in place.
    this.help = this.multi.create(
      1,
      0,
      { text: c.dim(keys ? KEY_HELP : 'Ctrl-C stop (resumable)') },
      { format: ' {text}' },
    );
    this.redraw();
  }

  get isPaused(): boolean {
    return this.state === 'paused';
  }

  setState(state: ViewState, message = ''): void {
    this.state = state;
    this.message = message;
    if (!this.tty) {
      if (message) this.out.note(`backfill ${this.id}: ${message}`);
      return;
    }
    this.redraw();
  }

  note(message: string): void {
    this.message = message;
    if (!this.tty) this.out.note(`backfill ${this.id}: ${message}`);
    this.redraw();
  }

  setKnobs(knobs: BackfillKnobs): void {
    this.knobs = knobs;
    if (knobs.batchSize !== null) this.batchSize = knobs.batchSize;
    this.redraw();
  }

  update(p: BackfillProgress): void {
    this.last = p;
    if (p.knobs) this.knobs = p.knobs;
    if (p.batchSize !== undefined) this.batchSize = p.batchSize;
    if (this.state === 'starting') this.state = 'running';
    if (this.tty) {
      this.redraw();
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain >= 1000 || p.done) {
      this.lastPlain = now;
      this.out.note(`backfill ${this.id}: ${this.summary()}`);
    }
  }

  /** Rows done of the estimate, rate, ETA and batch size, as one line. */
  summary(): string {
    const p = this.last;
    if (!p) return 'starting';
    const pct = p.done
      ? 100
      : p.rowsEstimate > 0
        ? Math.min(99.9, Math.round((p.rowsDone / p.rowsEstimate) * 1000) / 10)
        : 0;
    return `${formatNumber(p.rowsDone)}/${formatNumber(p.rowsEstimate)} rows (${pct}%) · ${formatNumber(p.rowsPerSecond)} rows/s · ETA ${p.done ? '0s' : formatDuration(p.etaSeconds)} · batch ${this.batchSize ?? '-'}${p.throttled ? ' · throttled' : ''}`;
  }

  stop(): void {
    if (!this.multi) return;
    this.redraw();
    this.multi.stop();
    this.multi = undefined;
  }

  private payload(): Record<string, string> {
    const p = this.last;
    const size =
      this.batchSize === undefined ? '-' : `${this.batchSize}${this.knobs.batchSize !== null ? ' (fixed)' : ''}`;
    return {
      done: formatNumber(p?.rowsDone ?? 0),
      estimate: formatNumber(p?.rowsEstimate ?? 0),
      rate: formatNumber(p?.rowsPerSecond),
      eta_text: p?.done ? '0s' : formatDuration(p?.etaSeconds),
      batch: size,
    };
  }

  private redraw(): void {
    if (!this.bar || !this.line) return;
    const p = this.last;
    const total = Math.max(1, p?.rowsEstimate ?? 1, p?.rowsDone ?? 0);
    this.bar.setTotal(total);
    this.bar.update(p?.done ? total : Math.min(total, p?.rowsDone ?? 0), this.payload());
    const c = this.out.err;
    const state =
      this.state === 'paused'
        ? c.yellow('PAUSED')
        : this.state === 'stopping'
          ? c.yellow('stopping after this batch…')
          : p?.throttled || this.knobs.throttle
            ? c.yellow(this.knobs.throttle ? 'THROTTLED (operator)' : 'THROTTLED')
            : c.green(this.state);
    const delay = this.knobs.pauseMs !== null ? ` · delay ${this.knobs.pauseMs} ms` : '';
    this.line.update(0, { text: `${state}${delay}${this.message ? ` · ${this.message}` : ''}` });
  }
}
