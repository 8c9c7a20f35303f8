import {
  context,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';

export interface WithSpanOptions {
  /** The context the span starts in (its parent). Default: the active one. */
  parent?: Context;
  /**
   * Make the span the active one while `fn` runs (default true), as `startActiveSpan` does: spans started inside
   * without an explicit parent become its children. False keeps the caller's active context, for code that
   * parents its children explicitly through the context handed to `fn` and must not re-parent spans started by
   * helpers it calls.
   */
  activate?: boolean;
}

/**
 * Runs `fn` in a span: an error it throws is recorded on the span, sets its status to ERROR with the error's
 * message and is rethrown unchanged; the span ends whatever happens. `fn` also gets the context that has the
 * span set in it, to parent child spans on.
 */
export async function withSpan<T>(
  tracer: Tracer,
  name: string,
  options: SpanOptions,
  fn: (span: Span, spanContext: Context) => Promise<T>,
  how: WithSpanOptions = {},
): Promise<T> {
  const parent = how.parent ?? context.active();
  const span = tracer.startSpan(name, options, parent);
  const spanContext = trace.setSpan(parent, span);
  try {
    return await (how.activate === false
      ? fn(span, spanContext)
      : context.with(spanContext, () => fn(span, spanContext)));
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
}
