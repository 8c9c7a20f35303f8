import { metrics, type Attributes } from '@opentelemetry/api';
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { TestkitError } from '../errors.js';
import { processSlot } from '@phaseflag/local/internal';

export type { ResourceMetrics };

export interface MetricCapture {
  /** Cumulative metrics as of now (since the provider was installed, not since `reset`). */
  collect(): Promise<ResourceMetrics>;
  /** Sum of a counter / up-down counter across series whose attributes include `attributes`, since `reset`. */
  sum(name: string, attributes?: Attributes): Promise<number>;
  /** Number of recordings into a histogram across matching series, since `reset`. */
  histogramCount(name: string, attributes?: Attributes): Promise<number>;
  /** Makes `sum` and `histogramCount` count from now; the provider is shared process-wide. */
  reset(): Promise<void>;
}

/** A reader that only exports when asked: tests read exact values instead of waiting for an export interval. */
class OnDemandMetricReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

interface MetricsSlot {
  reader: OnDemandMetricReader;
  /** Totals at the last `reset`, keyed by metric name and series attributes. */
  baseline: Map<string, number>;
}

/**
 * Installs, once per process, a global meter provider with an on-demand reader.
 *
 * Unlike tracers, meters are not proxies in the OpenTelemetry API: `metrics.getMeter()` called before this
 * returns a no-op meter forever. Code under test should fetch its meter when it records, or tests must call
 * `captureMetrics()` before that code first asks for a meter.
 */
export function captureMetrics(): MetricCapture {
  const slot = processSlot('metrics', installMetrics);
  const read = async () => flatten(await collectFrom(slot.reader));
  const since = async (name: string, kind: 'sum' | 'count', attributes: Attributes | undefined) => {
    let total = 0;
    for (const [key, value] of await read()) {
      if (key.name === name && key.kind === kind && matches(key.attributes, attributes)) {
        total += value - (slot.baseline.get(key.id) ?? 0);
      }
    }
    return total;
  };
  return {
    collect: () => collectFrom(slot.reader),
    sum: (name, attributes) => since(name, 'sum', attributes),
    histogramCount: (name, attributes) => since(name, 'count', attributes),
    reset: async () => {
      slot.baseline.clear();
      for (const [key, value] of await read()) slot.baseline.set(key.id, value);
    },
  };
}

function installMetrics(): MetricsSlot {
  const reader = new OnDemandMetricReader();
  const provider = new MeterProvider({ readers: [reader] });
  if (!metrics.setGlobalMeterProvider(provider)) {
    throw new TestkitError(
      'PF_TESTKIT_OTEL_ALREADY_REGISTERED',
      'Another OpenTelemetry meter provider is already registered in this process.',
      'Let the testkit own OpenTelemetry in tests: remove the other registration, or call metrics.disable() first.',
    );
  }
  return { reader, baseline: new Map() };
}

async function collectFrom(reader: MetricReader): Promise<ResourceMetrics> {
  const { resourceMetrics, errors } = await reader.collect();
  if (errors.length > 0) {
    throw new AggregateError(errors, 'collecting OpenTelemetry metrics failed');
  }
  return resourceMetrics;
}

interface SeriesKey {
  id: string;
  name: string;
  kind: 'sum' | 'count';
  attributes: Attributes;
}

/** One entry per series: a sum's value, or a histogram's recording count. Gauges carry no total and are skipped. */
function flatten(resourceMetrics: ResourceMetrics): Array<[SeriesKey, number]> {
  const out: Array<[SeriesKey, number]> = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      for (const [kind, attributes, value] of seriesOf(metric)) {
        const id = JSON.stringify([scope.scope.name, metric.descriptor.name, kind, sortedEntries(attributes)]);
        out.push([{ id, name: metric.descriptor.name, kind, attributes }, value]);
      }
    }
  }
  return out;
}

function seriesOf(metric: MetricData): Array<['sum' | 'count', Attributes, number]> {
  switch (metric.dataPointType) {
    case DataPointType.SUM:
      return metric.dataPoints.map((point) => ['sum', point.attributes, point.value]);
    case DataPointType.HISTOGRAM:
    case DataPointType.EXPONENTIAL_HISTOGRAM:
      return metric.dataPoints.map((point) => ['count', point.attributes, point.value.count]);
    default:
      return [];
  }
}

function matches(actual: Attributes, wanted: Attributes | undefined): boolean {
  if (!wanted) return true;
  return Object.entries(wanted).every(([key, value]) => JSON.stringify(actual[key]) === JSON.stringify(value));
}

function sortedEntries(attributes: Attributes): Array<[string, unknown]> {
  return Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
