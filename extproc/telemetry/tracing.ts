/**
 * @module telemetry/tracing
 * One span per request with the GenAI attributes, continuing the trace of Envoy's (or the
 * client's) `traceparent`: the span is written after the fact, from the usage record, with the
 * request's real start and end times, as a child of the incoming span. Spans leave over OTLP/HTTP
 * in batches; without a configured exporter no span is built (the record still carries the trace id).
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Context } from '@opentelemetry/api';
import type { BasicTracerProvider, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { lazyRequire } from '../lazyRequire.js';

// Loaded when a request tracer is first built (see lazyRequire.ts).
const otlpTrace = lazyRequire<typeof import('@opentelemetry/exporter-trace-otlp-http')>('@opentelemetry/exporter-trace-otlp-http');
const resources = lazyRequire<typeof import('@opentelemetry/resources')>('@opentelemetry/resources');
const sdkTrace = lazyRequire<typeof import('@opentelemetry/sdk-trace-base')>('@opentelemetry/sdk-trace-base');
import type { UsageRecord } from '../usage/record.js';
import { version } from '../version.js';

export interface TracingOptions {
  otlp?: { url: string; headers?: Record<string, string> | undefined } | undefined;
}

/** Parent of a request's span (from `traceparent`). */
export interface TraceParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

/** Writes request spans. */
export class RequestTracer {
  private readonly provider: BasicTracerProvider;
  private readonly tracer;

  /** `exporter`: where spans go; `batch` false exports each span at once (tests). */
  constructor(exporter: SpanExporter, batch = true) {
    this.provider = new (sdkTrace().BasicTracerProvider)({
      resource: resources().resourceFromAttributes({ 'service.name': 'envoy-llm-gateway', 'service.version': version }),
      spanProcessors: [batch ? new (sdkTrace().BatchSpanProcessor)(exporter) : new (sdkTrace().SimpleSpanProcessor)(exporter)],
    });
    this.tracer = this.provider.getTracer('envoy-llm-gateway', version);
  }

  /** The span of one finished request (`endedAt`: epoch ms). */
  span(r: UsageRecord, parent: TraceParent | undefined, endedAt: number): void {
    const ctx: Context = parent
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true })
      : ROOT_CONTEXT;
    const attributes: Record<string, string | number | boolean> = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.usage.input_tokens': r.tokens.input,
      'gen_ai.usage.output_tokens': r.tokens.output,
      'gateway.request_id': r.requestId,
      'gateway.cost_micros': r.costMicros,
      'gateway.attempts': r.attempts,
      'gateway.outcome': r.outcome,
    };
    if (r.requestedModel) attributes['gen_ai.request.model'] = r.requestedModel;
    if (r.servedModel) attributes['gen_ai.response.model'] = r.servedModel;
    if (r.provider) attributes['gen_ai.provider.name'] = r.provider;
    if (r.caller) attributes['gateway.caller'] = r.caller;
    if (r.route) attributes['gateway.route'] = r.route;
    if (r.cache) attributes['gateway.cache.status'] = r.cache;
    if (r.status !== undefined) attributes['http.response.status_code'] = r.status;
    if (r.errorClass) attributes['error.type'] = r.errorClass;
    const span = this.tracer.startSpan(`chat ${r.requestedModel ?? ''}`.trim(), { kind: SpanKind.CLIENT, startTime: r.startedAt, attributes }, ctx);
    if (r.errorClass) span.setStatus({ code: SpanStatusCode.ERROR, message: r.errorClass });
    span.end(endedAt);
  }

  /** Exports pending spans now. */
  async flush(): Promise<void> {
    await this.provider.forceFlush();
  }

  /** Exports pending spans and stops. */
  async close(): Promise<void> {
    await this.provider.shutdown().catch(() => undefined);
  }
}

/** A tracer for the options, or undefined when no exporter is configured. */
export function createRequestTracer(options: TracingOptions | undefined): RequestTracer | undefined {
  if (!options?.otlp) return undefined;
  return new RequestTracer(new (otlpTrace().OTLPTraceExporter)({ url: options.otlp.url, ...(options.otlp.headers ? { headers: options.otlp.headers } : {}) }));
}
