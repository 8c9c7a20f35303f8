import { inspect } from 'node:util';
import type { Logger } from '@phaseflag/core';
import type { ReadableSpan } from '@phaseflag/testkit';

/**
 * Everything a run printed or produced (stdout, stderr, error messages and their JSON, log lines, span attributes
 * and events), labelled by where it came from, and the secrets none of it may contain.
 */
export class SecretScan {
  readonly texts: Array<{ label: string; text: string }> = [];

  constructor(readonly secrets: readonly string[]) {}

  add(label: string, text: string): void {
    this.texts.push({ label, text });
  }

  /** An error as every consumer sees it: message, stack, JSON, `inspect()` and its causes. */
  addError(label: string, error: unknown): void {
    let e: unknown = error;
    for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
      const err = e as Error & { toJSON?: () => unknown; cause?: unknown };
      this.add(`${label} message`, String(err.message ?? err));
      this.add(`${label} stack`, String(err.stack ?? ''));
      this.add(`${label} inspect`, inspect(err, { depth: 6 }));
      if (typeof err.toJSON === 'function') this.add(`${label} json`, JSON.stringify(err.toJSON()));
      e = err.cause;
    }
  }

  /** A logger that keeps every line with its fields. */
  logger(label: string): Logger {
    const keep = (level: string) => (message: string, fields?: Record<string, unknown>) =>
      this.add(`${label} ${level}`, `${message} ${inspect(fields, { depth: 6 })}`);
    return { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
  }

  addSpans(label: string, spans: readonly ReadableSpan[]): void {
    for (const s of spans)
      this.add(
        `${label} span ${s.name}`,
        JSON.stringify({ name: s.name, attributes: s.attributes, events: s.events, status: s.status }),
      );
  }

  /** `label: secret` for every text that contains a secret (as is, or URL-encoded). */
  leaks(): string[] {
    const forms = [...new Set(this.secrets.flatMap((s) => [s, encodeURIComponent(s)]))];
    return this.texts.flatMap(({ label, text }) =>
      forms.filter((f) => text.includes(f)).map((f) => `${label}: ${f} in ${JSON.stringify(excerpt(text, f))}`),
    );
  }
}

function excerpt(text: string, secret: string): string {
  const i = text.indexOf(secret);
  return text.slice(Math.max(0, i - 80), i + secret.length + 40);
}
