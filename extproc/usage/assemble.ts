/**
 * @module usage/assemble
 * Builds a request's record from what the stages left on the exchange: the request summary
 * (parse-request), the caller (identity), the contributions (routing, PII, cache, limits, the
 * attempt that served), `ai_gateway` metadata forwarded by Envoy, and the collector's view of
 * the response. No stage writes the record; this reads their parts once, in `finish`.
 */
import type { Catalog } from '../pipeline/stage.js';
import type { Exchange, Outcome } from '../pipeline/exchange.js';
import { dialectOfPath } from '../providers/paths.js';
import type { TokenCounter } from '../tokens/index.js';
import { callerIdentity } from '../stages/identity.js';
import { requestSummary } from '../stages/parseRequest.js';
import type { UsageCollector } from './collector.js';
import {
  ATTEMPT_METADATA,
  attemptContribution,
  cacheContribution,
  piiContribution,
  rateLimitContribution,
  routeContribution,
} from './contributions.js';
import { errorClassOf, parseTraceparent, type RecordTokens, type UsageRecord } from './record.js';
import { ZERO_TOKENS, costOf, estimateTokens, tokensOf, type PriceBook } from './settle.js';

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
function int(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** `ai_gateway` metadata forwarded to this exchange. */
export function gatewayMetadata(x: Exchange): Record<string, unknown> {
  const ns = x.metadata['ai_gateway'];
  return ns !== null && typeof ns === 'object' ? (ns as Record<string, unknown>) : {};
}

/** What `assemble` needs besides the exchange. */
export interface AssembleContext {
  readonly prices: PriceBook;
  readonly catalog: Catalog;
  /** Tokenizer for estimates; none: no estimate (provider figures only). */
  readonly counter: TokenCounter | undefined;
  /** Epoch ms of `performance.now() === 0` (performance.timeOrigin). */
  readonly timeOrigin: number;
}

/** The served model (catalog name when the catalog knows it) and its provider. */
export function servedOf(x: Exchange, collector: UsageCollector | undefined, ctx: Pick<AssembleContext, 'prices' | 'catalog'>): { model: string | undefined; provider: string | undefined } {
  const md = gatewayMetadata(x);
  const attempt = x.get(attemptContribution);
  const cache = x.get(cacheContribution);
  const raw =
    attempt?.servedModel ??
    str(md[ATTEMPT_METADATA.servedModel]) ??
    (cache?.status === 'hit' ? cache.model : undefined) ??
    collector?.responseModel ??
    x.get(routeContribution)?.model ??
    x.get(requestSummary)?.model;
  const model = raw === undefined ? undefined : ctx.prices.catalogName(raw);
  const entry = model === undefined ? undefined : (ctx.catalog.models[model] as { provider?: string } | undefined);
  const provider = attempt?.provider ?? str(md[ATTEMPT_METADATA.provider]) ?? entry?.provider ?? x.get(routeContribution)?.provider;
  return { model, provider };
}

/** Tokens the provider reported, when it reported final usage (sync: for response metadata). */
export function reportedTokens(collector: UsageCollector | undefined): RecordTokens | undefined {
  return collector?.extractor.usage.complete ? tokensOf(collector.extractor.usage) : undefined;
}

/** The record of a finished exchange. */
export async function assembleRecord(x: Exchange, outcome: Outcome, collector: UsageCollector | undefined, endedAt: number, ctx: AssembleContext): Promise<UsageRecord> {
  const summary = x.get(requestSummary);
  const route = x.get(routeContribution);
  const attempt = x.get(attemptContribution);
  const cache = x.get(cacheContribution);
  const limit = x.get(rateLimitContribution);
  const md = gatewayMetadata(x);
  const path = x.requestHeaders?.get(':path') ?? '';
  const api = dialectOfPath(path)?.api ?? 'unknown';
  const { model: servedModel, provider } = servedOf(x, collector, ctx);
  const stream = summary?.stream === true || x.responseIsEventStream;
  const responded = outcome.kind === 'completed' || outcome.kind === 'client-gone' || outcome.kind === 'shutdown' || outcome.kind === 'unobserved';
  const success = responded && (outcome.status === undefined || outcome.status < 400);

  let tokens: RecordTokens = { ...ZERO_TOKENS };
  let estimated = false;
  if (cache?.status !== 'hit' && success && collector) {
    const reported = reportedTokens(collector);
    if (reported) tokens = reported;
    else if (ctx.counter && (collector.sawBody || collector.extractor.textLength > 0)) {
      // No final usage (stream without include_usage, answer cut short): count what was delivered.
      tokens = await estimateTokens(collector.extractor.usage, collector.extractor.text, summary?.body, servedModel ?? summary?.model ?? 'unknown', ctx.counter);
      estimated = true;
    } else tokens = tokensOf(collector.extractor.usage);
  }

  const price = servedModel === undefined ? undefined : ctx.prices.price(servedModel);
  const costMicros = price ? costOf(tokens, price) : 0;
  let savedMicros = 0;
  if (cache?.status === 'hit') {
    if (cache.savedMicros !== undefined) savedMicros = cache.savedMicros;
    else if (cache.savedUsage && price) savedMicros = costOf({ ...ZERO_TOKENS, input: cache.savedUsage.inputTokens, output: cache.savedUsage.outputTokens }, price);
  }

  const requestedModel = summary?.model;
  let fallbackPath: string[] = attempt?.path ? [...attempt.path] : [];
  if (fallbackPath.length === 0) {
    const fromMd = str(md['fallback_path']);
    if (fromMd) fallbackPath = fromMd.split('>');
    else if (route?.model && servedModel && servedModel !== route.model && outcome.kind !== 'immediate') fallbackPath = [route.model, servedModel];
  }
  const wentUpstream = outcome.kind !== 'immediate' && outcome.kind !== 'unobserved' ? 1 : 0;
  const attempts = attempt?.attempts ?? int(md[ATTEMPT_METADATA.attempts]) ?? Math.max(wentUpstream, fallbackPath.length);
  const firstByte = collector?.firstByteAt;

  return {
    requestId: x.requestId,
    traceId: parseTraceparent(x.requestHeaders?.get('traceparent'))?.traceId,
    startedAt: Math.round(ctx.timeOrigin + x.startedAt),
    caller: x.get(callerIdentity)?.caller,
    route: route?.route ?? str(md[ATTEMPT_METADATA.route]),
    api,
    requestedModel,
    servedModel,
    provider,
    attempts,
    fallbackPath,
    stream,
    tokens,
    estimated,
    latencyMs: Math.max(0, endedAt - x.startedAt),
    ttftMs: firstByte === undefined ? undefined : Math.max(0, firstByte - x.startedAt),
    costMicros,
    priced: price !== undefined,
    cache: cache?.status,
    savedMicros,
    pii: { ...(x.get(piiContribution) ?? {}) },
    rateLimit: limit?.decision,
    rateLimitName: limit?.limit,
    status: outcome.status,
    outcome: outcome.kind,
    errorClass: errorClassOf(outcome, {
      rateLimited: limit?.decision === 'reject',
      streamError: collector?.streamError === true,
      sawEnd: collector ? collector.extractor.sawEnd : undefined,
      stream,
    }),
  };
}
