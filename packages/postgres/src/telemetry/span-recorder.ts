import { randomBytes } from 'node:crypto';
import {
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

/** A span as the recorder kept it: name, attributes, start and end (epoch ms), events by name. */
export interface RecordedSpan {
  readonly name: string;
  readonly attributes: Record<string, AttributeValue | undefined>;
  readonly startMs: number;
  endMs: number | null;
  readonly events: string[];
  status: SpanStatus | null;
}

/**
 * A tracer provider that keeps every span in memory, for a caller that reads the engine's own spans back (the
 * CLI's `rehearse` reports each DDL statement from its `phaseflag.ddl` span): no SDK, no exporter, no context
 * propagation beyond what the engine passes explicitly.
 */
export class SpanRecorder implements TracerProvider {
  readonly spans: RecordedSpan[] = [];

  getTracer(): Tracer {
    const start = (name: string, options: SpanOptions = {}): Span => this.start(name, options);
    return {
      startSpan: start,
      startActiveSpan: (name: string, ...rest: unknown[]) => {
        const fn = rest[rest.length - 1] as (span: Span) => unknown;
        return fn(start(name, typeof rest[0] === 'object' ? (rest[0] as SpanOptions) : {}));
      },
    };
  }

  private start(name: string, options: SpanOptions): Span {
    const record: RecordedSpan = {
      name,
      attributes: { ...(options.attributes ?? {}) },
      startMs: Date.now(),
      endMs: null,
      events: [],
      status: null,
    };
    this.spans.push(record);
    const context: SpanContext = {
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: TraceFlags.SAMPLED,
    };
    const span: Span = {
      spanContext: () => context,
      setAttribute: (key: string, value: AttributeValue) => ((record.attributes[key] = value), span),
      setAttributes: (attributes: Attributes) => (Object.assign(record.attributes, attributes), span),
      addEvent: (event: string) => (record.events.push(event), span),
      addLink: () => span,
      addLinks: () => span,
      setStatus: (status: SpanStatus) => ((record.status = status), span),
      updateName: () => span,
      end: () => {
        record.endMs ??= Date.now();
      },
      isRecording: () => record.endMs === null,
      recordException: () => undefined,
    };
    return span;
  }
}
