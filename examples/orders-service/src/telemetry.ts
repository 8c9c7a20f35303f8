/**
 * OpenTelemetry for the service, as an application installs it: the Node SDK with HTTP, Express and pg
 * instrumentations and an OTLP/HTTP trace exporter. phaseflag itself only uses @opentelemetry/api, so its spans
 * (phaseflag.transition, phaseflag.backfill, …) land in whatever the application installs here.
 *
 * Started only when OTEL_EXPORTER_OTLP_ENDPOINT is set: without it the API's no-op provider stays and nothing
 * is exported (the SDK would otherwise try localhost:4318 and log every failed export).
 *
 * Must run before express, knex and pg are loaded: instrumentations patch modules as they load. server.ts
 * therefore imports this first and the service after it, with a dynamic import.
 */
import { register } from 'node:module';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';

export interface Telemetry {
  /** Flushes buffered spans and stops the SDK. */
  shutdown(): Promise<void>;
}

export function startTelemetry(env: NodeJS.ProcessEnv = process.env): Telemetry | undefined {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  // This package is ESM: modules it imports are patched through import-in-the-middle's loader hook, the
  // CommonJS ones they require (knex → pg) through require-in-the-middle, which the SDK installs itself.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'orders-service',
    // OTLP over HTTP with JSON bodies, to OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces (Jaeger and the collector
    // accept it on 4318).
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [
      // Health checks and flag polls would be most of the spans; the requests are the interesting ones.
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => req.url === '/healthz',
        // unleash-client polls every UNLEASH_REFRESH_MS: a root span per poll would bury the requests.
        ignoreOutgoingRequestHook: (req) => typeof req.path === 'string' && req.path.includes('/api/client/'),
      }),
      new ExpressInstrumentation(),
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
