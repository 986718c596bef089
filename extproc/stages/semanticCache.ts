/**
 * @module stages/semanticCache
 * The `semantic-cache` stage (router filter; after `identity` and `pii`, before `rate-limit`):
 * answers a request from earlier answers of the same scope, or stores the provider's answer.
 *
 * Request body (`/v1/chat/completions`, `/v1/messages`): the scope (extproc/cache/scope.ts) is
 * the caller (identity's slot; without `identity` every caller shares the partition
 * `anonymous`), the route and the model it plans to serve (route's slot; else `default` and the
 * body's model), the dialect, the system prompt, tools, every answer-changing parameter and the
 * earlier turns. The exact hash is looked up first, the embedding of the newest user turn only
 * on a miss, all within `lookupBudgetMs` (x.signal and a timer abort the embedding call). A hit
 * is an immediate answer in the client's dialect — JSON, or an SSE stream when it asked
 * `stream: true` — with `x-gateway-cache: hit`, `x-gateway-cache-similarity` and
 * `x-gateway-cache-age`; nothing reaches the provider and no provider tokens are spent.
 *
 * Request headers honoured: `cache-control: no-cache` (no lookup), `no-store` (the answer is
 * not stored), `max-age=N` (older entries are not served), and `x-gateway-cache-threshold`
 * (raises the similarity threshold for this request; a lower value is ignored).
 *
 * Miss: the answer is read as it passes (`responseBodyAccess: 'observe'`, never delayed) and
 * stored in `finish`, off the critical path, only when the exchange completed with 200, the
 * answer reached its end with a natural stop (not `length` unless `storeTruncated`, never tool
 * calls), the request's temperature was at most `maxTemperature`, the model that served is the
 * one the scope names (a fallback's answer is not stored under the primary's scope), and the
 * answer holds no PII: no placeholder-shaped text (`<EMAIL_1>`) and no entities found by the
 * `pii` stage's `scanResponses`. The answer is read from the raw bytes, before `pii` restores
 * anything, so a restored value can never be stored.
 *
 * Failure: any store or embedding error, a store still opening, or a lookup over its budget is
 * a miss (counted, logged at most once per 10 s per kind). With the entry's `failure: closed`,
 * store and embedding errors refuse the request instead (500), for deployments that would
 * rather fail than pay for an answer the cache should have served.
 *
 * For usage: `cacheContribution` (status, saved usage, model) and the richer `cacheStatus`
 * slot; dynamic metadata `ai_gateway.cache_status`.
 */
import { deriveCacheKeys, EmbedderError, CacheStoreError, type CacheKeys, type Dialect } from '../cache/index.js';
import { isCachedAnswer, replayAnswer } from '../cache/replay.js';
import { placeholderPattern } from '../pii/placeholders.js';
import { slot, type Exchange, type Outcome } from '../pipeline/exchange.js';
import type { PhaseOutput } from '../pipeline/output.js';
import type { BodyChunk } from '../pipeline/phases.js';
import type { Stage, StageDeps, StageFactory } from '../pipeline/stage.js';
import { dialectOfPath } from '../providers/paths.js';
import { attemptContribution, cacheContribution } from '../usage/contributions.js';
import { AnswerCapture } from './cacheCapture.js';
import { semanticCacheOptionsSchema, type SemanticCacheOptions } from './cacheOptions.js';
import { CacheService, cacheServiceConfig } from './cacheService.js';
import { callerIdentity } from './identity.js';
import { piiResponseCounts } from './pii.js';
import { routeChoice } from './route.js';

export { semanticCacheOptionsSchema, type SemanticCacheOptions } from './cacheOptions.js';
export { activeCacheServices, type CacheService, type CacheCounters } from './cacheService.js';

/** Response headers the client learns the cache's verdict from. */
export const CACHE_HEADER = 'x-gateway-cache';
export const SIMILARITY_HEADER = 'x-gateway-cache-similarity';
export const AGE_HEADER = 'x-gateway-cache-age';
/** Request header: a stricter similarity threshold for this request. */
export const THRESHOLD_HEADER = 'x-gateway-cache-threshold';

/** Caller partition when no `identity` stage ran. */
export const ANONYMOUS_CALLER = 'anonymous';

/** What the cache decided for a request (no prompt or answer text). */
export interface CacheStatus {
  /** `hit`: answered from the cache; `miss`: looked up, not served; `bypass`: not looked up. */
  readonly status: 'hit' | 'miss' | 'bypass';
  /** Why a miss or bypass (e.g. `no-entry`, `below-threshold`, `verify-number`, `no-cache`, `store-error`). */
  readonly reason?: string;
  readonly match?: 'exact' | 'similar';
  readonly similarity?: number;
  /** Age of the served entry. */
  readonly ageMs?: number;
  /** Usage of the original answer: what the hit saved. */
  readonly savedUsage?: { readonly inputTokens: number; readonly outputTokens: number };
  /** Time the lookup took, ms. */
  readonly lookupMs?: number;
}

/** Slot written by `semantic-cache`. */
export const cacheStatus = slot<CacheStatus>('cacheStatus');

/** Per-exchange state of a miss whose answer may be stored. */
interface MissState {
  readonly service: CacheService;
  readonly keys: CacheKeys;
  readonly dialect: Dialect;
  /** The model the scope names (what must serve for the answer to be stored). */
  readonly plannedModel: string;
  /** The route stage planned the model (a served model reported by the attempt must equal it). */
  readonly routed: boolean;
  /** Embedding computed during the lookup, reused for the entry. */
  embedding: Float32Array | undefined;
  readonly capture: AnswerCapture;
  /** Why the answer will not be stored, once known. */
  refused: string | undefined;
}
const missState = slot<MissState>('semanticCache.miss');

/** Test seams: a distinct name and a clock (ms since epoch) for TTL and max-age. */
export interface SemanticCacheInternals {
  readonly name?: string;
  readonly clock?: () => number;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `no-cache`, `no-store`, `max-age=N` of a request's `cache-control`. */
export function parseCacheControl(value: string | undefined): { noCache: boolean; noStore: boolean; maxAgeMs: number | undefined } {
  const out = { noCache: false, noStore: false, maxAgeMs: undefined as number | undefined };
  if (!value) return out;
  for (const raw of value.split(',')) {
    const d = raw.trim().toLowerCase();
    if (d === 'no-cache') out.noCache = true;
    else if (d === 'no-store') out.noStore = true;
    else if (d.startsWith('max-age=')) {
      const n = Number(d.slice('max-age='.length).replace(/^"|"$/g, ''));
      if (Number.isInteger(n) && n >= 0) out.maxAgeMs = Math.min(out.maxAgeMs ?? Infinity, n * 1000);
    }
  }
  return out;
}

/** The threshold for a request: the configured one, raised (never lowered) by the header. */
export function effectiveThreshold(configured: number, header: string | undefined): number {
  if (header === undefined) return configured;
  const n = Number(header.trim());
  if (!Number.isFinite(n) || n <= configured || n > 1) return configured;
  return n;
}

function temperatureOf(body: Json): number {
  const t = body['temperature'];
  return typeof t === 'number' && Number.isFinite(t) ? t : 1;
}

const TIMED_OUT = Symbol('timed-out');

/** Races `p` against `ms`; the timer is cleared either way. */
function within<T>(p: Promise<T>, ms: number, abort: AbortController): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      abort.abort(new Error('lookup budget spent'));
      resolve(TIMED_OUT);
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Finish reasons of an answer that ended on its own. */
const NATURAL_STOPS = new Set(['stop', 'end_turn', 'stop_sequence']);
const TRUNCATED = new Set(['length', 'max_tokens']);

/** Builds the stage; the factory below and tests (with internals) call it. */
export function createSemanticCache(options: SemanticCacheOptions, deps: StageDeps, internals: SemanticCacheInternals = {}): Stage {
  const name = internals.name ?? 'semantic-cache';
  const clock = internals.clock ?? Date.now;
  const serviceConfig = cacheServiceConfig(options);
  // A test's clock is not config: its factory gets its own service key.
  const key = internals.name ? `cache-store:${internals.name}` : 'cache-store';
  const service = deps.services.shared(key, serviceConfig, () => new CacheService(serviceConfig, deps.log), (s) => s.close());
  const ttlMs = options.ttlSeconds * 1000;

  function decide(x: Exchange, out: PhaseOutput, status: CacheStatus, model?: string): void {
    x.set(cacheStatus, status);
    x.set(cacheContribution, {
      status: status.status,
      ...(status.savedUsage ? { savedUsage: status.savedUsage } : {}),
      ...(model !== undefined ? { model } : {}),
    });
    out.setMetadata('ai_gateway', 'cache_status', status.status);
  }

  function bypass(x: Exchange, out: PhaseOutput, reason: string): void {
    service.counters.bypasses++;
    decide(x, out, { status: 'bypass', reason });
  }

  type LookupContext = { keys: CacheKeys; dialect: Dialect; body: Json; threshold: number; maxAgeMs: number | undefined; store: boolean; plannedModel: string; routed: boolean };

  /** Looks up the cache; synchronous (no promise, no timer) when the scope is known empty in process. */
  function lookup(stage: Stage, x: Exchange, out: PhaseOutput, ctx: LookupContext): void | Promise<void> {
    if (service.cache?.knownEmpty(ctx.keys.scopeKey, clock())) {
      service.counters.lookups++;
      missed(x, out, ctx.store ? missStateOf(ctx) : undefined, { status: 'miss', reason: 'no-entry', lookupMs: 0 });
      return;
    }
    return lookupAsync(stage, x, out, ctx);
  }

  /** Records a miss; when the answer may be stored, reads it as it passes (`state`). */
  function missed(x: Exchange, out: PhaseOutput, state: MissState | undefined, status: CacheStatus): void {
    service.counters.misses++;
    decide(x, out, status);
    if (state) {
      x.set(missState, state);
      x.wantResponseBody();
    }
  }

  function missStateOf(ctx: LookupContext): MissState {
    return {
      service,
      keys: ctx.keys,
      dialect: ctx.dialect,
      plannedModel: ctx.plannedModel,
      routed: ctx.routed,
      embedding: undefined,
      capture: new AnswerCapture(ctx.dialect, options.maxAnswerChars),
      refused: undefined,
    };
  }

  async function lookupAsync(stage: Stage, x: Exchange, out: PhaseOutput, ctx: LookupContext): Promise<void> {
    const started = performance.now();
    service.counters.lookups++;
    const state: MissState | undefined = ctx.store ? missStateOf(ctx) : undefined;
    const miss = (reason: string, extra: Partial<CacheStatus> = {}): void =>
      missed(x, out, state, { status: 'miss', reason, lookupMs: performance.now() - started, ...extra });
    const cache = service.cache;
    if (!cache) {
      service.counters.notReady++;
      return miss('store-not-ready');
    }
    const abort = new AbortController();
    const embedding = async (): Promise<Float32Array> => {
      // Made only when the lookup needs a vector (a lookup in an empty scope never does).
      const signal = AbortSignal.any([abort.signal, x.signal]);
      const [v] = await service.embedder.embed([ctx.keys.newestUserText], signal);
      if (!v) throw new EmbedderError('invalid-response', 'embedder returned no vector');
      if (state) state.embedding = v;
      return v;
    };
    let result;
    try {
      result = await within(
        cache.lookup({
          scopeKey: ctx.keys.scopeKey,
          exactHash: ctx.keys.exactHash,
          promptText: ctx.keys.newestUserText,
          embedding,
          threshold: ctx.threshold,
          ...(ctx.maxAgeMs !== undefined ? { maxAgeMs: ctx.maxAgeMs } : {}),
          now: clock(),
        }),
        options.lookupBudgetMs,
        abort,
      );
    } catch (err) {
      const kind = err instanceof EmbedderError ? 'embedding' : 'store';
      if (x.closed) return; // the client left: nothing to answer
      service.failure(kind, err);
      if (stage.failure === 'closed' && (err instanceof EmbedderError || err instanceof CacheStoreError)) throw err;
      return miss(`${kind}-error`);
    }
    if (result === TIMED_OUT) {
      service.failure('budget', undefined);
      return miss('over-budget');
    }
    if (!result.hit) return miss(result.reason, result.bestSimilarity !== undefined ? { similarity: result.bestSimilarity } : {});
    if (!isCachedAnswer(result.answer)) {
      // A row this version cannot replay (written by a newer gateway?): the provider answers.
      return miss('unreadable-entry');
    }
    const answer = result.answer;
    service.counters.hits++;
    const wantsStream = ctx.body['stream'] === true;
    const so = ctx.body['stream_options'];
    const includeUsage = isObj(so) && so['include_usage'] === true;
    const replay = replayAnswer(answer, ctx.dialect, { stream: wantsStream, includeUsage, created: Math.floor(clock() / 1000) });
    const similarity = result.similarity.toFixed(4);
    decide(x, out, {
      status: 'hit',
      match: result.match,
      similarity: result.similarity,
      ageMs: result.ageMs,
      savedUsage: answer.usage,
      lookupMs: performance.now() - started,
    }, result.model);
    out.setMetadata('ai_gateway', 'served_model', result.model);
    if (x.logs('debug')) x.log.debug('semantic cache hit', { match: result.match, similarity: result.similarity, age_ms: result.ageMs });
    out.respond({
      status: 200,
      headers: {
        'content-type': wantsStream ? 'text/event-stream; charset=utf-8' : 'application/json',
        ...(wantsStream ? { 'cache-control': 'no-cache' } : {}),
        [CACHE_HEADER]: 'hit',
        [SIMILARITY_HEADER]: similarity,
        [AGE_HEADER]: String(Math.floor(result.ageMs / 1000)),
      },
      body: replay.body,
      details: 'gateway_cache_hit',
    });
  }

  function requestBody(this: Stage, x: Exchange, out: PhaseOutput): void | Promise<void> {
    const info = dialectOfPath(x.requestHeaders?.get(':path') ?? '');
    if (!info || (info.api !== 'chat' && info.api !== 'messages')) return;
    const body = x.requestJson();
    if (!isObj(body)) return;
    const dialect: Dialect = info.dialect;
    const cc = parseCacheControl(x.requestHeaders?.get('cache-control'));
    if (temperatureOf(body) > options.maxTemperature) return bypass(x, out, 'temperature');
    const n = body['n'];
    if (typeof n === 'number' && n !== 1) return bypass(x, out, 'multiple-choices');
    const caller = x.get(callerIdentity)?.caller ?? ANONYMOUS_CALLER;
    const choice = x.get(routeChoice);
    const bodyModel = typeof body['model'] === 'string' ? body['model'] : '';
    const route = choice?.route ?? 'default';
    const plannedModel = choice?.chain[0] ?? bodyModel;
    const derived = deriveCacheKeys(body, dialect, { caller, route, model: plannedModel });
    if (!derived.cacheable) return bypass(x, out, derived.reason);
    const store = !cc.noStore;
    if (cc.noCache && !store) return bypass(x, out, 'no-cache');
    const threshold = effectiveThreshold(options.routeThresholds[route] ?? options.threshold, x.requestHeaders?.get(THRESHOLD_HEADER));
    const ctx = { keys: derived, dialect, body, threshold, maxAgeMs: cc.maxAgeMs, store, plannedModel, routed: choice !== undefined };
    if (cc.noCache) {
      // Not looked up, but the fresh answer refreshes the cache.
      service.counters.bypasses++;
      decide(x, out, { status: 'bypass', reason: 'no-cache' });
      x.set(missState, missStateOf(ctx));
      x.wantResponseBody();
      return;
    }
    return lookup(this, x, out, ctx);
  }

  function responseHeaders(x: Exchange, out: PhaseOutput): void {
    const st = x.get(cacheStatus);
    if (!st) return;
    out.setHeader(CACHE_HEADER, st.status);
    const m = x.get(missState);
    if (m && x.responseStatus !== 200) m.refused = 'status';
  }

  function responseBody(x: Exchange, _out: PhaseOutput, chunk: BodyChunk): void {
    const m = x.get(missState);
    if (!m || m.refused || m.capture.refusal !== undefined) return; // not storable: read no further
    if (x.responseIsEventStream) {
      // The events as received: `pii` (before us) may have restored the shared ones, and a
      // restored value must never be stored.
      m.capture.events(x.receivedResponseEvents(chunk));
    } else {
      m.capture.jsonChunk(chunk.bytes, chunk.endOfStream);
    }
  }

  /** Why the answer of `m` may not be stored, or undefined when it may. */
  function refusal(x: Exchange, outcome: Outcome, m: MissState, body: Json | undefined): string | undefined {
    if (m.refused) return m.refused;
    if (outcome.kind !== 'completed' || outcome.status !== 200) return `outcome-${outcome.kind}`;
    if (!outcome.responseComplete) return 'incomplete';
    if (m.routed) {
      const md = x.metadata['ai_gateway'];
      const served = x.get(attemptContribution)?.servedModel ?? (isObj(md) && typeof md['served_model'] === 'string' ? md['served_model'] : undefined);
      if (served !== undefined && served !== m.plannedModel) return 'fallback-model';
    }
    const pii = x.get(piiResponseCounts);
    if (pii && Object.keys(pii).length > 0) return 'pii-in-answer';
    if (body && temperatureOf(body) > options.maxTemperature) return 'temperature';
    return undefined;
  }

  async function finish(x: Exchange, outcome: Outcome): Promise<void> {
    const m = x.get(missState);
    if (!m) return;
    let body: Json | undefined;
    try {
      const b = x.requestJson();
      body = isObj(b) ? b : undefined;
    } catch {
      body = undefined;
    }
    const svc = m.service;
    const why = refusal(x, outcome, m, body);
    if (why) return svc.notStored(why);
    const captured = m.capture.result();
    if (!captured.ok) return svc.notStored(captured.reason);
    const answer = captured.answer;
    if (TRUNCATED.has(answer.finishReason) ? !options.storeTruncated : !NATURAL_STOPS.has(answer.finishReason)) return svc.notStored(`finish-${answer.finishReason}`);
    placeholderPattern.lastIndex = 0;
    if (placeholderPattern.test(answer.text)) return svc.notStored('pii-placeholder');
    const cache = await svc.whenReady(30_000);
    if (!cache) return svc.notStored('store-not-ready');
    let embedding = m.embedding;
    if (!embedding) {
      try {
        embedding = (await svc.embedder.embed([m.keys.newestUserText]))[0];
      } catch (err) {
        // Stored without a vector: it still serves exact repeats.
        svc.failure('embedding', err);
      }
    }
    const queued = cache.store({
      scopeKey: m.keys.scopeKey,
      exactHash: m.keys.exactHash,
      promptText: m.keys.newestUserText,
      ...(embedding ? { embedding } : {}),
      answer,
      model: m.plannedModel || answer.model,
      ttlMs,
      now: clock(),
    });
    if (queued) svc.counters.stored++;
    else svc.counters.dropped++;
  }

  return {
    name,
    // A cache must never be why a request fails; `failure: closed` on the entry opts out.
    failure: 'open',
    // Backstop only: the handler answers within its own budget (a miss) before this fires.
    timeoutMs: options.lookupBudgetMs + 250,
    responseBodyUse: 'on-demand',
    responseBodyAccess: 'observe',
    requestBody,
    responseHeaders,
    responseBody,
    finish,
  };
}

/** A `semantic-cache` factory; tests pass a clock and a distinct name. */
export function semanticCacheFactory(internals: SemanticCacheInternals = {}): StageFactory<SemanticCacheOptions> {
  return {
    name: internals.name ?? 'semantic-cache',
    options: semanticCacheOptionsSchema,
    writes: [cacheStatus, cacheContribution],
    create: (options, deps) => createSemanticCache(options, deps, internals),
  };
}

/** The built-in `semantic-cache` stage. */
export const semanticCacheStage: StageFactory<SemanticCacheOptions> = semanticCacheFactory();
