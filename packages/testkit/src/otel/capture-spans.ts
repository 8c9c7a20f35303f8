import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { TestkitError } from '../errors.js';
import { processSlot } from '@phaseflag/local/internal';

export type { ReadableSpan };

export interface SpanCapture {
  /** Every ended span since the last reset, in end order. */
  spans(): ReadableSpan[];
  byName(name: string): ReadableSpan[];
  /** Forgets captured spans. The exporter is shared process-wide, so reset in `beforeEach`. */
  reset(): void;
}

/**
 * Installs, once per process, a global tracer provider that keeps ended spans in memory. `SimpleSpanProcessor`
 * exports on `span.end()`, so spans are visible without flushing. The AsyncLocalStorage context manager is what
 * makes a span started after an `await` a child of the span that was active before it; without one the API's
 * no-op manager loses the parent.
 *
 * Tracers are proxies in the OpenTelemetry API, so code that called `trace.getTracer()` before this ran still
 * records into this provider.
 */
export function captureSpans(): SpanCapture {
  const exporter = processSlot('spanExporter', installTracing);
  return {
    spans: () => exporter.getFinishedSpans(),
    byName: (name) => exporter.getFinishedSpans().filter((span) => span.name === name),
    reset: () => exporter.reset(),
  };
}

function installTracing(): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(contextManager) || !trace.setGlobalTracerProvider(provider)) {
    throw new TestkitError(
      'PF_TESTKIT_OTEL_ALREADY_REGISTERED',
      'Another OpenTelemetry context manager or tracer provider is already registered in this process.',
      'Let the testkit own OpenTelemetry in tests: remove the other registration, or call trace.disable() and context.disable() first.',
    );
  }
  return exporter;
}
