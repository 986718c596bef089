/**
 * @module telemetry/metrics
 * OpenTelemetry metrics of the gateway, from usage records: the GenAI semantic conventions
 * (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
 * `gen_ai.server.time_to_first_token` with `gen_ai.request.model`, `gen_ai.response.model`,
 * `gen_ai.provider.name`, `gen_ai.operation.name`) plus the gateway's own: cost, cache hits and
 * misses, PII entities, rate-limit rejections, fallbacks and errors.
 *
 * Exported on a Prometheus endpoint (our own `node:http` server around the exporter's request
 * handler, so the port can be 0 in tests and the bind address is ours) and/or over OTLP/HTTP.
 * Recording is a handful of in-memory aggregations per request; export runs on scrape or timer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { IMetricReader, MeterProvider } from '@opentelemetry/sdk-metrics';
import { lazyRequire } from '../lazyRequire.js';

// Loaded when a usage stage first builds its metrics (see lazyRequire.ts).
const otlpMetrics = lazyRequire<typeof import('@opentelemetry/exporter-metrics-otlp-http')>('@opentelemetry/exporter-metrics-otlp-http');
const prometheus = lazyRequire<typeof import('@opentelemetry/exporter-prometheus')>('@opentelemetry/exporter-prometheus');
const resources = lazyRequire<typeof import('@opentelemetry/resources')>('@opentelemetry/resources');
const sdkMetrics = lazyRequire<typeof import('@opentelemetry/sdk-metrics')>('@opentelemetry/sdk-metrics');
import type { UsageRecord } from '../usage/record.js';
import { version as VERSION } from '../version.js';
import type { Logger } from './logger.js';
import { describeError } from './logger.js';

/** Where metrics go. */
export interface MetricsOptions {
  prometheus?: { port: number; host: string; path: string } | undefined;
  otlp?: { url: string; intervalMs: number; headers?: Record<string, string> | undefined } | undefined;
}

/** Metric names as the gateway records them (OpenTelemetry names; Prometheus replaces `.` by `_`). */
export const METRIC = {
  tokenUsage: 'gen_ai.client.token.usage',
  operationDuration: 'gen_ai.client.operation.duration',
  timeToFirstToken: 'gen_ai.server.time_to_first_token',
  requests: 'gateway.requests',
  cost: 'gateway.cost.usd',
  cacheRequests: 'gateway.cache.requests',
  cacheSaved: 'gateway.cache.saved.usd',
  piiEntities: 'gateway.pii.entities',
  rateLimitRejections: 'gateway.ratelimit.rejections',
  fallbacks: 'gateway.fallbacks',
  errors: 'gateway.errors',
} as const;

/** Bucket boundaries the GenAI semantic conventions recommend. */
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/** The gateway's instruments on one MeterProvider, fed one usage record per request. */
export class GatewayMetrics {
  private readonly provider: MeterProvider;
  private readonly server: Server | undefined;
  /** Resolves with the Prometheus endpoint's address once it listens (undefined without one). */
  readonly prometheus: Promise<{ host: string; port: number; path: string } | undefined>;
  private readonly tokenUsage: Histogram;
  private readonly duration: Histogram;
  private readonly ttft: Histogram;
  private readonly requests: Counter;
  private readonly cost: Counter;
  private readonly cacheRequests: Counter;
  private readonly cacheSaved: Counter;
  private readonly pii: Counter;
  private readonly rateLimit: Counter;
  private readonly fallbacks: Counter;
  private readonly errors: Counter;

  constructor(options: MetricsOptions, log?: Logger) {
    const readers: IMetricReader[] = [];
    let exporter: PrometheusExporter | undefined;
    if (options.prometheus) {
      exporter = new (prometheus().PrometheusExporter)({ preventServerStart: true });
      readers.push(exporter);
    }
    if (options.otlp) {
      readers.push(
        new (sdkMetrics().PeriodicExportingMetricReader)({
          exporter: new (otlpMetrics().OTLPMetricExporter)({ url: options.otlp.url, ...(options.otlp.headers ? { headers: options.otlp.headers } : {}) }),
          exportIntervalMillis: options.otlp.intervalMs,
          exportTimeoutMillis: Math.min(options.otlp.intervalMs, 30_000),
        }),
      );
    }
    this.provider = new (sdkMetrics().MeterProvider)({
      resource: resources().resourceFromAttributes({ 'service.name': 'envoy-llm-gateway', 'service.version': VERSION }),
      readers,
    });
    const meter: Meter = this.provider.getMeter('envoy-llm-gateway', VERSION);
    this.tokenUsage = meter.createHistogram(METRIC.tokenUsage, { unit: '{token}', description: 'Tokens used per request, by gen_ai.token.type', advice: { explicitBucketBoundaries: TOKEN_BUCKETS } });
    this.duration = meter.createHistogram(METRIC.operationDuration, { unit: 's', description: 'Duration of a GenAI request through the gateway', advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
    this.ttft = meter.createHistogram(METRIC.timeToFirstToken, { unit: 's', description: 'Time to the first response byte of a streamed answer', advice: { explicitBucketBoundaries: TTFT_BUCKETS } });
    this.requests = meter.createCounter(METRIC.requests, { description: 'Requests, by caller, model and outcome' });
    this.cost = meter.createCounter(METRIC.cost, { unit: 'usd', description: 'Cost of provider usage in USD (summed from integer micro-dollars)' });
    this.cacheRequests = meter.createCounter(METRIC.cacheRequests, { description: 'Semantic cache lookups, by gateway.cache.status (hit, miss)' });
    this.cacheSaved = meter.createCounter(METRIC.cacheSaved, { unit: 'usd', description: 'Cost saved by cache hits' });
    this.pii = meter.createCounter(METRIC.piiEntities, { description: 'PII entities redacted, by gateway.pii.entity_type' });
    this.rateLimit = meter.createCounter(METRIC.rateLimitRejections, { description: 'Requests rejected by a rate limit or budget' });
    this.fallbacks = meter.createCounter(METRIC.fallbacks, { description: 'Requests served by a later step of their chain, from -> to' });
    this.errors = meter.createCounter(METRIC.errors, { description: 'Failed requests, by error.type' });

    if (exporter && options.prometheus) {
      const { host, port, path } = options.prometheus;
      const handler = exporter;
      const server = createServer((req, res) => {
        const url = (req.url ?? '/').split('?')[0];
        if (req.method === 'GET' && url === path) handler.getMetricsRequestHandler(req, res);
        else res.writeHead(404).end();
      });
      this.server = server;
      this.prometheus = new Promise((resolve) => {
        server.once('error', (err) => {
          log?.error('metrics endpoint failed to listen', { host, port, error: describeError(err) });
          resolve(undefined);
        });
        server.listen(port, host, () => {
          const addr = server.address() as AddressInfo;
          log?.info('metrics endpoint listening', { host, port: addr.port, path });
          resolve({ host, port: addr.port, path });
        });
      });
    } else {
      this.prometheus = Promise.resolve(undefined);
    }
  }

  /** Records one request. */
  record(r: UsageRecord): void {
    const base: Attributes = { 'gen_ai.operation.name': 'chat' };
    if (r.requestedModel) base['gen_ai.request.model'] = r.requestedModel;
    if (r.servedModel) base['gen_ai.response.model'] = r.servedModel;
    if (r.provider) base['gen_ai.provider.name'] = r.provider;
    const failed: Attributes = r.errorClass ? { ...base, 'error.type': r.errorClass } : base;
    this.duration.record(r.latencyMs / 1000, failed);
    if (r.ttftMs !== undefined && r.stream) this.ttft.record(r.ttftMs / 1000, base);
    const hasTokens = r.tokens.input > 0 || r.tokens.output > 0;
    if (hasTokens) {
      this.tokenUsage.record(r.tokens.input, { ...base, 'gen_ai.token.type': 'input' });
      this.tokenUsage.record(r.tokens.output, { ...base, 'gen_ai.token.type': 'output' });
    }
    const caller = r.caller ?? '(none)';
    this.requests.add(1, { ...base, 'gateway.caller': caller, 'gateway.outcome': r.outcome });
    if (r.costMicros > 0) this.cost.add(r.costMicros / 1_000_000, { ...base, 'gateway.caller': caller });
    if (r.cache === 'hit' || r.cache === 'miss') this.cacheRequests.add(1, { ...base, 'gateway.cache.status': r.cache });
    if (r.savedMicros > 0) this.cacheSaved.add(r.savedMicros / 1_000_000, { ...base, 'gateway.caller': caller });
    for (const [type, n] of Object.entries(r.pii)) if (n > 0) this.pii.add(n, { 'gateway.pii.entity_type': type });
    if (r.rateLimit === 'reject') this.rateLimit.add(1, { 'gateway.caller': caller, 'gateway.ratelimit.limit': r.rateLimitName ?? 'unknown' });
    const path = r.fallbackPath;
    if (path.length > 1) this.fallbacks.add(1, { 'gateway.fallback.from': path[0]!, 'gateway.fallback.to': path[path.length - 1]! });
    if (r.errorClass) this.errors.add(1, { ...base, 'error.type': r.errorClass });
  }

  /** Exports what is pending (OTLP) and stops the endpoint. */
  async close(): Promise<void> {
    await this.provider.shutdown().catch(() => undefined);
    const server = this.server;
    if (server?.listening) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }
}
