/**
 * @module stages/rateLimit
 * The `rate-limit` stage (router filter): keeps each caller, model and route inside its
 * requests-per-minute, tokens-per-minute, concurrency and USD budgets (extproc/limits/), with
 * the same answer on every replica when the limits live in Redis.
 *
 * Order: after `identity` (limits are per caller), after the cache lookup (a hit answers before
 * this stage's request body handler, so it reserves nothing) and after `route` when routing is
 * on (per-model limits then apply to the routed model; without it, to the body's model).
 *
 * - Request headers: starts reading the caller's budget use and publishes it in `budgetUsage`
 *   (a promise of the fraction used), which `route` awaits in its body handler to steer a caller
 *   whose budget is nearly spent to a cheaper tier. Every stage's header handler runs before
 *   any body handler, so the read overlaps the body's arrival.
 * - Request body: reserves the estimate (prompt bytes as a token upper bound, plus `max_tokens`
 *   or `defaultOutputTokens`, and their cost) against every limit in one call (one Lua script
 *   on Redis). Over a limit: 429 in the client's dialect with `retry-after` and the
 *   `x-ratelimit-*` headers.
 * - Response headers: OpenAI-style `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
 * - Response body (observe only): the provider's usage fields, or the generated text.
 * - Finish: settles the reservation to what was used (a client gone mid-stream pays for what
 *   was generated); refunds it when nothing was served; the concurrency slot is freed on
 *   every end.
 */
import type { Identity } from '../identity/index.js';
import {
  FailoverLimiter,
  MemoryLimiter,
  createLimiter,
  decisionHeaders,
  limitConfigProblems,
  setRateLimitHeaders,
  rateLimitOptionsSchema,
  type Decision,
  type LimitAmounts,
  type LimitCatalog,
  type LimitHit,
  type Limiter,
  type RateLimitOptions,
} from '../limits/index.js';
import { slot, type Exchange, type Outcome } from '../pipeline/exchange.js';
import { startEarly } from '../pipeline/pipeline.js';
import type { PhaseOutput } from '../pipeline/output.js';
import type { Stage, StageDeps, StageFactory } from '../pipeline/stage.js';
import { dialectOfRequestPath } from '../providers/paths.js';
import { describeError } from '../telemetry/logger.js';
import { sharedTokenCounter } from '../tokens/index.js';
import { callerIdentity } from './identity.js';
import { LimitModels, type LimitModel } from './rateLimitEstimate.js';
import { actualUsage } from './rateLimitSettle.js';
import { responseUsage, UsageCollector } from '../usage/collector.js';
import { routeChoice } from './route.js';
import { budgetUsage } from './rateLimitSlots.js';

export { budgetUsage };

/** Per-exchange state of the stage. */
export interface RateLimitState {
  readonly caller: string;
  readonly model: LimitModel;
  readonly route: string | undefined;
  readonly estimate: LimitAmounts;
  /** The reservation call; awaited again by `finish`, so a reservation made after a stage timeout is still settled. */
  readonly pending: Promise<Decision>;
  decision: Decision | undefined;
  /** Created on the first response chunk. */
  read: UsageCollector | undefined;
}

/** Slot written by `rate-limit`: the request's reservation, for later stages that want its figures. */
export const rateLimitState = slot<RateLimitState>('rateLimit.state');

/** Test seams (never set by config): the limiter's clock. */
export interface RateLimitInternals {
  /** Stage name (a test registers a clocked copy beside the built-in one). */
  readonly name?: string;
  /** Current time in ms since the epoch for limit windows (default `Date.now`). */
  readonly clock?: () => number;
  /** Called with the limiter when the stage is created (tests inspect its failover stats). */
  readonly onLimiter?: (limiter: Limiter) => void;
}

/** What the shared limiter service holds: the limiter and its start-up readiness. */
interface LimiterService {
  readonly limiter: Limiter;
  /** Resolves once Redis answered the first time, or at once for memory (never rejects). */
  readonly ready: Promise<void>;
  started: boolean;
}

/**
 * Longest the first requests wait for Redis's first connection: without this wait, the requests
 * that arrive while the client connects would be decided by the failover's local limiter.
 */
const startupWait = (options: RateLimitOptions): number => options.redis?.timeoutMs ?? 50;

function limiterService(options: RateLimitOptions, deps: StageDeps, internals: RateLimitInternals): LimiterService {
  // The clock is not config: a test factory with a clock gets its own service key.
  const key = internals.clock ? `limiter:${internals.name ?? 'rate-limit'}` : 'limiter';
  return deps.services.shared(
    key,
    options,
    (): LimiterService => {
      const limiter = createLimiter(options, { logger: deps.log, ...(internals.clock ? { clock: internals.clock } : {}) });
      const svc: LimiterService = {
        limiter,
        ready: limiter instanceof FailoverLimiter ? limiter.ready(10_000).catch(() => undefined) : Promise.resolve(),
        started: !(limiter instanceof FailoverLimiter),
      };
      void svc.ready.then(() => (svc.started = true));
      return svc;
    },
    (svc) => svc.limiter.close(),
  );
}

/** Waits for the limiter's first connection, at most `ms` (no wait once it happened or timed out). */
function whenStarted(svc: LimiterService, ms: number): Promise<void> | undefined {
  if (svc.started) return undefined;
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([svc.ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => {
    clearTimeout(timer);
    svc.started = true;
  });
}

const METRIC_TEXT: Record<LimitHit['metric'], string> = {
  requestsPerMinute: 'requests per minute',
  inputTokensPerMinute: 'input tokens per minute',
  outputTokensPerMinute: 'output tokens per minute',
  concurrentStreams: 'concurrent streams',
  usdPerDay: 'USD budget per day',
  usdPerMonth: 'USD budget per month',
  unavailable: 'unavailable',
};

const SCOPE_TEXT: Record<LimitHit['scope'], string> = {
  caller: 'per caller',
  'caller-model': 'per caller and model',
  route: 'per route',
  model: 'for the model across all callers',
  limiter: '',
};

/** The client's message: which limit, from the config only (no caller, model or prompt text). */
export function refusalMessage(hit: LimitHit): string {
  if (hit.metric === 'unavailable') return 'Rate limiter unavailable; retry shortly.';
  const what = hit.metric === 'usdPerDay' || hit.metric === 'usdPerMonth' ? `${METRIC_TEXT[hit.metric]} ${SCOPE_TEXT[hit.scope]} is spent` : `${METRIC_TEXT[hit.metric]} ${SCOPE_TEXT[hit.scope]} exceeded`;
  return `Rate limit reached: ${what} (limits[${hit.rule}]).`;
}

function hasBudgets(options: RateLimitOptions): boolean {
  return options.limits.some((l) => l.usdPerDay !== undefined || l.usdPerMonth !== undefined);
}

function requestObject(x: Exchange): Readonly<Record<string, unknown>> | undefined {
  const body = x.requestJson();
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
}

/** Answers 429 in the client's dialect when the limiter refused the request. */
function refuseUnlessAdmitted(x: Exchange, out: PhaseOutput, decision: Decision): void {
  if (decision.admitted) return;
  if (x.logs('info')) x.log.info('rate limited', { rule: decision.limit.rule, scope: decision.limit.scope, metric: decision.limit.metric });
  const headers = decisionHeaders(decision);
  out.fail('RATE_LIMITED', refusalMessage(decision.limit), {
    retryAfterSeconds: Number(headers['retry-after']),
    headers,
    details: `gateway_rate_limited_${decision.limit.metric}`,
  });
}

/** The stage, built from validated options. */
export function createRateLimit(options: RateLimitOptions, deps: StageDeps, internals: RateLimitInternals = {}): Stage {
  const name = internals.name ?? 'rate-limit';
  const svc = limiterService(options, deps, internals);
  const limiter = svc.limiter;
  internals.onLimiter?.(limiter);
  const counter = sharedTokenCounter(deps.services);
  const models = new LimitModels(deps.catalog.models, options);
  const budgets = hasBudgets(options);
  const wait = startupWait(options);
  const redis = options.backend === 'redis' ? options.redis : undefined;

  async function settle(x: Exchange, st: RateLimitState, outcome: Outcome): Promise<void> {
    let decision: Decision;
    try {
      decision = st.decision ?? (await st.pending);
    } catch {
      return; // the reservation call failed: nothing was reserved
    }
    if (!decision.admitted) return;
    const reservation = decision.reservation;
    let read = st.read;
    if (!read && outcome.kind === 'client-gone') {
      // The client left before any of the answer's body passed: the prompt was sent, nothing
      // generated reached us. Charge the prompt (counted), no output.
      read = new UsageCollector(dialectOfRequestPath(x.requestHeaders?.get(':path')));
      read.sawBody = true;
    }
    const generated = read?.generated ?? false;
    // Nothing was served: a later stage answered, the request never got an answer, or the
    // provider refused it before generating anything. The whole reservation is refunded.
    const refund =
      outcome.kind === 'immediate' ||
      ((outcome.kind === 'no-response' || outcome.kind === 'upstream-error' || outcome.kind === 'shutdown') && !generated);
    if (refund) {
      await limiter.release(reservation);
      if (x.logs('debug')) x.log.debug('rate limit released', { outcome: outcome.kind });
      return;
    }
    let body: Readonly<Record<string, unknown>> | undefined;
    try {
      body = requestObject(x);
    } catch {
      body = undefined;
    }
    const { amounts, source } = read
      ? await actualUsage(read, body, st.model, st.estimate, counter, models.factors)
      : { amounts: st.estimate, source: 'reserved' as const };
    await limiter.settle(reservation, amounts);
    if (x.logs('debug')) {
      x.log.debug('rate limit settled', { outcome: outcome.kind, source, input_tokens: amounts.inputTokens, output_tokens: amounts.outputTokens, cost_micros: amounts.costMicros });
    }
  }

  return {
    name,
    // With `failure: closed` on Redis, a stage that cannot decide must not let requests through.
    failure: redis?.failure ?? 'open',
    // Above the limiter's own Redis timeout (its failover answers first): only a bug trips it.
    timeoutMs: (redis?.timeoutMs ?? 50) * 2 + 50,
    responseBodyAccess: 'observe',

    requestHeaders(x) {
      const identity: Identity | undefined = x.get(callerIdentity);
      if (!identity) return;
      // Without USD budgets nothing is published: `route` then decides synchronously.
      if (!budgets) return;
      const started = whenStarted(svc, wait);
      const read = started ? started.then(() => limiter.usage(identity.caller)) : limiter.usage(identity.caller);
      x.set(budgetUsage, startEarly(read.then((u) => u.maxFraction, () => 0)));
    },

    requestBody(x, out) {
      const identity = x.get(callerIdentity);
      if (!identity) return;
      const body = requestObject(x);
      if (!body) return;
      const choice = x.get(routeChoice);
      const model = models.resolve(choice?.chain[0] ?? (typeof body['model'] === 'string' ? body['model'] : undefined));
      const route = choice?.route;
      const estimate = models.estimate(body, model);
      const request = { caller: identity.caller, model: model.name, route, estimate };
      if (limiter instanceof MemoryLimiter) {
        // The in-process backend never waits: decided now, with no promise on the request path.
        const decision = limiter.reserveSync(request);
        const st: RateLimitState = { caller: identity.caller, model, route, estimate, pending: Promise.resolve(decision), decision, read: undefined };
        x.set(rateLimitState, st);
        refuseUnlessAdmitted(x, out, decision);
        return;
      }
      const started = whenStarted(svc, wait);
      const pending = startEarly((started ?? Promise.resolve()).then(() => limiter.reserve(request)));
      const st: RateLimitState = { caller: identity.caller, model, route, estimate, pending, decision: undefined, read: undefined };
      x.set(rateLimitState, st);
      return pending.then((decision) => {
        st.decision = decision;
        refuseUnlessAdmitted(x, out, decision);
      });
    },

    responseHeaders(x, out) {
      const d = x.get(rateLimitState)?.decision;
      if (!d?.admitted) return;
      setRateLimitHeaders(out, d.info);
    },

    responseBody(x, _out, chunk) {
      const st = x.get(rateLimitState);
      if (!st?.decision?.admitted) return;
      st.read ??= responseUsage(x);
      st.read.chunk(x, chunk);
    },

    async finish(x, outcome) {
      const st = x.get(rateLimitState);
      if (!st) return;
      try {
        await settle(x, st, outcome);
      } catch (err) {
        x.log.warn('rate limit settlement failed', { error: describeError(err) });
      }
    },
  };
}

/** A `rate-limit` factory; tests pass a clock (and a distinct name) through `internals`. */
export function rateLimitFactory(internals: RateLimitInternals = {}): StageFactory<RateLimitOptions> {
  const name = internals.name ?? 'rate-limit';
  return {
    name,
    options: rateLimitOptionsSchema,
    writes: [budgetUsage, rateLimitState],
    reads: [callerIdentity],
    check: (options, catalog) => limitConfigProblems(options, catalog as unknown as LimitCatalog),
    create: (options, deps) => createRateLimit(options, deps, internals),
  };
}

/** The built-in `rate-limit` stage. */
export const rateLimitStage: StageFactory<RateLimitOptions> = rateLimitFactory();
