import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { captureSpans } from '@phaseflag/testkit';
import { withSpan } from '../src/telemetry/with-span.js';

describe('withSpan: the one span wrapper every phaseflag operation goes through', function () {
  const spans = captureSpans();
  const tracer = trace.getTracer('phaseflag-test');
  beforeEach(() => spans.reset());
  const one = (name: string) => {
    const found = spans.byName(name);
    assert.equal(found.length, 1, `one span named ${name}`);
    return found[0]!;
  };

  it('ends the span and returns what the work returned', async () => {
    const value = await withSpan(tracer, 'ok', { attributes: { a: 1 } }, async (span) => {
      span.setAttribute('b', 2);
      return 42;
    });
    assert.equal(value, 42);
    const span = one('ok');
    assert.deepEqual(span.attributes, { a: 1, b: 2 });
    assert.equal(span.status.code, SpanStatusCode.UNSET);
  });

  it('records a failure on the span, marks it ERROR with its message and rethrows the very same error', async () => {
    const boom = new Error('boom');
    await assert.rejects(
      withSpan(tracer, 'fails', {}, async () => {
        throw boom;
      }),
      (e) => e === boom,
    );
    const span = one('fails');
    assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: 'boom' });
    assert.equal(span.events.filter((e) => e.name === 'exception').length, 1);
    assert.equal(span.events[0]!.attributes?.['exception.message'], 'boom');
  });

  it('is the active span while the work runs, so spans started inside are its children', async () => {
    await withSpan(tracer, 'outer', {}, async () => {
      await sleep(1);
      tracer.startSpan('inner').end();
    });
    assert.equal(one('inner').parentSpanContext?.spanId, one('outer').spanContext().spanId);
  });

  it("with activate: false leaves the caller's span active and hands over a context to parent children on", async () => {
    await withSpan(tracer, 'caller', {}, async () => {
      await withSpan(
        tracer,
        'quiet',
        {},
        async (_span, spanContext) => {
          tracer.startSpan('unparented').end();
          tracer.startSpan('child', {}, spanContext).end();
        },
        { activate: false },
      );
    });
    const id = (name: string) => one(name).spanContext().spanId;
    const parent = (name: string) => one(name).parentSpanContext?.spanId;
    assert.equal(parent('quiet'), id('caller'));
    assert.equal(parent('unparented'), id('caller'));
    assert.equal(parent('child'), id('quiet'));
  });

  it('starts under an explicit parent context rather than the active one', async () => {
    const root = tracer.startSpan('root');
    await withSpan(tracer, 'elsewhere', {}, async () => {
      await withSpan(tracer, 'placed', {}, async () => undefined, { parent: trace.setSpan(context.active(), root) });
    });
    root.end();
    assert.equal(one('placed').parentSpanContext?.spanId, root.spanContext().spanId);
  });
});
