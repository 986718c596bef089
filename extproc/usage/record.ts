/**
 * @module usage/record
 * The one record written per request, and how an exchange's outcome maps to its error class.
 * Everything in it is safe to log and store: ids, names, counts, durations, money. Never prompt
 * text, PII values or credentials.
 */
import type { Outcome } from '../pipeline/exchange.js';

/** Tokens by kind. `input` counts every prompt token (cached and cache-written included). */
export interface RecordTokens {
  input: number;
  output: number;
  cachedInput: number;
  cacheWrite: number;
  /** Part of `output`. */
  reasoning: number;
}

export interface UsageRecord {
  requestId: string;
  /** From the `traceparent` header (W3C), when present. */
  traceId: string | undefined;
  /** When the request reached the gateway (epoch ms). */
  startedAt: number;
  caller: string | undefined;
  route: string | undefined;
  /** `chat` or `messages` (`gen_ai.operation.name`: chat for both). */
  api: string;
  requestedModel: string | undefined;
  servedModel: string | undefined;
  provider: string | undefined;
  attempts: number;
  /** Models tried in order when known (fallbacks), the serving one last. */
  fallbackPath: string[];
  stream: boolean;
  tokens: RecordTokens;
  /** The provider reported no (final) usage: tokens were counted by the gateway. */
  estimated: boolean;
  latencyMs: number;
  /** First response byte after the request reached the gateway (streams). */
  ttftMs: number | undefined;
  /** Integer micro-dollars; 0 when unpriced (`priced` false). */
  costMicros: number;
  priced: boolean;
  cache: 'hit' | 'miss' | 'bypass' | undefined;
  savedMicros: number;
  /** PII entity type → count. */
  pii: Record<string, number>;
  rateLimit: 'allow' | 'reject' | 'skip' | undefined;
  rateLimitName: string | undefined;
  status: number | undefined;
  outcome: Outcome['kind'];
  /** Undefined when the request succeeded. */
  errorClass: string | undefined;
}

/** Error classes a record can carry (also the `error.type` metric attribute values). */
export const ERROR_CLASSES = [
  'rate_limited',
  'unauthenticated',
  'gateway_rejected',
  'upstream_rate_limited',
  'upstream_client_error',
  'upstream_server_error',
  'no_response',
  'client_gone',
  'shutdown',
  'stream_error',
  'truncated',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/**
 * The error class of an outcome. `no-response` is Envoy's own local reply (exhausted chain 503,
 * timeout 504), which never passes through the gateway; `immediate` answers ≥ 400 are the
 * gateway's refusals (a limit, identity, bad input).
 */
export function errorClassOf(
  outcome: Outcome,
  facts: { rateLimited?: boolean; streamError?: boolean; sawEnd?: boolean; stream?: boolean } = {},
): ErrorClass | undefined {
  const status = outcome.status;
  switch (outcome.kind) {
    case 'immediate':
      if (status === undefined || status < 400) return undefined;
      if (facts.rateLimited || status === 429) return 'rate_limited';
      if (status === 401) return 'unauthenticated';
      return 'gateway_rejected';
    case 'upstream-error':
      if (status === 429) return 'upstream_rate_limited';
      return status !== undefined && status < 500 ? 'upstream_client_error' : 'upstream_server_error';
    case 'no-response':
      return 'no_response';
    case 'client-gone':
      return 'client_gone';
    case 'shutdown':
      return 'shutdown';
    case 'completed':
      if (facts.streamError) return 'stream_error';
      // A stream that ended without its terminal event was cut upstream.
      if (facts.stream && facts.sawEnd === false) return 'truncated';
      return undefined;
    case 'unobserved':
      return undefined;
  }
}

/** W3C `traceparent` → trace id and parent span id, or undefined when malformed or all zeros. */
export function parseTraceparent(header: string | undefined): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (!header) return undefined;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/.exec(header.trim());
  if (!m || m[1] === 'ff') return undefined;
  const traceId = m[2]!;
  const spanId = m[3]!;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (parseInt(m[4]!, 16) & 1) === 1 };
}

/** The record as one flat JSON log object (no nested PII map: entity counts as `pii_<TYPE>`). */
export function recordLogFields(r: UsageRecord): Record<string, string | number | boolean | null> {
  const f: Record<string, string | number | boolean | null> = {
    trace_id: r.traceId ?? null,
    caller: r.caller ?? null,
    route: r.route ?? null,
    api: r.api,
    requested_model: r.requestedModel ?? null,
    served_model: r.servedModel ?? null,
    provider: r.provider ?? null,
    attempts: r.attempts,
    fallback_path: r.fallbackPath.length > 0 ? r.fallbackPath.join('>') : null,
    stream: r.stream,
    input_tokens: r.tokens.input,
    output_tokens: r.tokens.output,
    cached_input_tokens: r.tokens.cachedInput,
    cache_write_tokens: r.tokens.cacheWrite,
    reasoning_tokens: r.tokens.reasoning,
    estimated: r.estimated,
    latency_ms: Math.round(r.latencyMs * 1000) / 1000,
    ttft_ms: r.ttftMs === undefined ? null : Math.round(r.ttftMs * 1000) / 1000,
    cost_micros: r.costMicros,
    priced: r.priced,
    cache: r.cache ?? null,
    saved_micros: r.savedMicros,
    rate_limit: r.rateLimit ?? null,
    status: r.status ?? null,
    outcome: r.outcome,
    error_class: r.errorClass ?? null,
  };
  for (const [type, n] of Object.entries(r.pii)) f[`pii_${type}`] = n;
  return f;
}
