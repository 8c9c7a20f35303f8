import assert from 'node:assert/strict';
import { metrics, trace } from '@opentelemetry/api';
import { captureMetrics, captureSpans, createSuiteSchema, type Suite } from '../src/index.js';

describe('captureSpans', function () {
  const spans = captureSpans();
  beforeEach(() => spans.reset());

  it('sees ended spans, with parent/child kept across awaits of real queries', async function () {
    const suite: Suite = await createSuiteSchema('spans');
    try {
      const tracer = trace.getTracer('testkit-test');
      await tracer.startActiveSpan('phaseflag.migrate', async (parent) => {
        await suite.knex.raw('SELECT pg_sleep(0.01)');
        await tracer.startActiveSpan('phaseflag.backfill.batch', async (child) => {
          await suite.knex.raw('SELECT 1');
          child.setAttribute('rows', 10);
          child.end();
        });
        parent.end();
      });
    } finally {
      await suite.cleanup();
    }
    const [parent] = spans.byName('phaseflag.migrate');
    const [child] = spans.byName('phaseflag.backfill.batch');
    assert.ok(
      parent && child,
      `spans seen: ${spans
        .spans()
        .map((s) => s.name)
        .join(', ')}`,
    );
    assert.equal(child.parentSpanContext?.spanId, parent.spanContext().spanId);
    assert.equal(child.spanContext().traceId, parent.spanContext().traceId);
    assert.equal(child.attributes.rows, 10);
  });

  it('forgets spans on reset and returns the same exporter from every call', function () {
    trace.getTracer('testkit-test').startSpan('one').end();
    assert.equal(captureSpans().byName('one').length, 1);
    spans.reset();
    assert.equal(spans.spans().length, 0);
  });
});

describe('captureMetrics', function () {
  const captured = captureMetrics();
  beforeEach(() => captured.reset());

  it('sums counters by attributes and counts histogram recordings since reset', async function () {
    const meter = metrics.getMeter('testkit-test');
    const rows = meter.createCounter('phaseflag.backfill.rows');
    const latency = meter.createHistogram('phaseflag.backfill.batch.duration');
    rows.add(100, { table: 'orders' });
    rows.add(50, { table: 'orders' });
    rows.add(7, { table: 'users' });
    latency.record(12);
    latency.record(30);
    assert.equal(await captured.sum('phaseflag.backfill.rows'), 157);
    assert.equal(await captured.sum('phaseflag.backfill.rows', { table: 'orders' }), 150);
    assert.equal(await captured.histogramCount('phaseflag.backfill.batch.duration'), 2);

    await captured.reset();
    rows.add(1, { table: 'orders' });
    assert.equal(await captured.sum('phaseflag.backfill.rows', { table: 'orders' }), 1);
    assert.equal(await captured.histogramCount('phaseflag.backfill.batch.duration'), 0);
    const collected = await captured.collect();
    assert.ok(collected.scopeMetrics.some((scope) => scope.scope.name === 'testkit-test'));
  });
});
