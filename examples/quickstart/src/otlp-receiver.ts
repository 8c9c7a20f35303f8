/**
 * A tiny OTLP/HTTP receiver: the service instances export their traces here, the demo keeps the phaseflag spans
 * for its timeline, and everything (traces, metrics, logs, as received) is passed on to the user's collector when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. Only OTLP/JSON is decoded (the demo asks its children for http/json); a
 * protobuf body is still forwarded, just not shown.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  /** `service.instance.id`, else `service.name`, of the exporting process. */
  source: string;
}

export interface ReceiverStats {
  requests: number;
  spansSeen: number;
  spansKept: number;
  undecodable: number;
  forwarded: number;
  forwardFailed: number;
  forwardDropped: number;
  lastForwardError?: string;
}

export interface OtlpReceiver {
  /** Base URL to give exporters as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  /** Where signals are forwarded (the user's collector), or undefined. */
  readonly forwardTo: string | undefined;
  spans(): ReceivedSpan[];
  stats(): ReceiverStats;
  /** Waits for forwards in flight (at most 5 s), then closes. */
  close(): Promise<void>;
}

const SIGNALS = ['/v1/traces', '/v1/metrics', '/v1/logs'] as const;
const MAX_BODY = 32 * 1024 * 1024;
const MAX_FORWARDS_IN_FLIGHT = 32;

export async function startOtlpReceiver(options: {
  keep: (spanName: string) => boolean;
  env?: NodeJS.ProcessEnv;
}): Promise<OtlpReceiver> {
  const env = options.env ?? process.env;
  const forwardBase = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '') || undefined;
  const forwardHeaders = parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS);
  const kept: ReceivedSpan[] = [];
  const stats: ReceiverStats = {
    requests: 0,
    spansSeen: 0,
    spansKept: 0,
    undecodable: 0,
    forwarded: 0,
    forwardFailed: 0,
    forwardDropped: 0,
  };
  const inFlight = new Set<Promise<void>>();

  // Per-signal override, as the OTel spec reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and friends (used as is).
  const forwardUrl = (signal: (typeof SIGNALS)[number]): string | undefined => {
    const specific = env[`OTEL_EXPORTER_OTLP_${signal.slice(4).toUpperCase()}_ENDPOINT`];
    return specific || (forwardBase ? `${forwardBase}${signal}` : undefined);
  };

  const forward = (url: string, body: Buffer, contentType: string): void => {
    if (inFlight.size >= MAX_FORWARDS_IN_FLIGHT) {
      stats.forwardDropped++;
      return;
    }
    const sent = fetch(url, {
      method: 'POST',
      body,
      headers: { ...forwardHeaders, 'content-type': contentType },
      signal: AbortSignal.timeout(10_000),
    })
      .then(async (response) => {
        await response.arrayBuffer();
        if (response.ok) stats.forwarded++;
        else {
          stats.forwardFailed++;
          stats.lastForwardError = `${url} answered ${response.status}`;
        }
      })
      .catch((error: unknown) => {
        stats.forwardFailed++;
        stats.lastForwardError = `${url}: ${error instanceof Error ? error.message : String(error)}`;
      })
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const signal = SIGNALS.find((s) => req.url?.split('?')[0] === s);
    if (req.method !== 'POST' || !signal) {
      res.writeHead(404).end();
      return;
    }
    stats.requests++;
    const body = await readBody(req);
    const contentType = req.headers['content-type'] ?? 'application/json';
    const target = forwardUrl(signal);
    if (target) forward(target, body, contentType);
    const json = contentType.includes('json');
    if (signal === '/v1/traces') {
      if (json) collect(body, options.keep, kept, stats);
      else stats.undecodable++;
    }
    res
      .writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' })
      .end(json ? '{}' : undefined);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(400).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as { port: number };

  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    forwardTo: forwardBase ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    spans: () => kept.slice(),
    stats: () => ({ ...stats }),
    close: () =>
      (closed ??= (async () => {
        await Promise.race([Promise.all(inFlight), sleep(5_000, undefined, { ref: false })]);
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })()),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy(new Error('OTLP body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface OtlpValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpAttribute {
  key: string;
  value?: OtlpValue;
}
type OtlpTime = string | number | { low: number; high: number };
interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  startTimeUnixNano: OtlpTime;
  endTimeUnixNano: OtlpTime;
  attributes?: OtlpAttribute[];
}
interface OtlpTraces {
  resourceSpans?: Array<{ resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

function collect(body: Buffer, keep: (name: string) => boolean, into: ReceivedSpan[], stats: ReceiverStats): void {
  let parsed: OtlpTraces;
  try {
    parsed = JSON.parse(body.toString('utf8')) as OtlpTraces;
  } catch {
    stats.undecodable++;
    return;
  }
  for (const rs of parsed.resourceSpans ?? []) {
    const resource = attributesOf(rs.resource?.attributes);
    const source = String(resource['service.instance.id'] ?? resource['service.name'] ?? 'unknown');
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        stats.spansSeen++;
        if (!keep(span.name)) continue;
        stats.spansKept++;
        into.push({
          name: span.name,
          traceId: span.traceId,
          spanId: span.spanId,
          startMs: nanosToMs(span.startTimeUnixNano),
          endMs: nanosToMs(span.endTimeUnixNano),
          attributes: attributesOf(span.attributes),
          source,
        });
      }
    }
  }
}

function attributesOf(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = valueOf(value);
  return out;
}

function valueOf(v: OtlpValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(valueOf);
  return undefined;
}

/** OTLP/JSON carries nanoseconds as a decimal string; some encoders use a number or protobuf.js's {low, high}. */
function nanosToMs(t: OtlpTime): number {
  if (typeof t === 'object') return (t.high * 2 ** 32 + (t.low >>> 0)) / 1e6;
  return Number(BigInt(t) / 1000n) / 1000;
}

/** OTEL_EXPORTER_OTLP_HEADERS: `key=value,key2=value2`, values URL-encoded (the OTel spec's format). */
function parseHeaders(raw: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (raw ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}
