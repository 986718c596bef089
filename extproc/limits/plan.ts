/**
 * @module limits/plan
 * Which counters a request touches: rules compiled once from the stage options, then, per
 * request, the list of counters with their limits, amounts and windows. Both backends execute
 * the same plan, so they cannot disagree on what is counted.
 *
 * Windows are fixed and aligned to the clock (UTC): a minute, a day, a calendar month. A fixed
 * window is exact and needs one counter per key (one INCRBY in Redis); its cost is a burst of
 * up to twice the rate across a boundary, which per-minute provider quotas tolerate. Keys carry
 * the window index, so a window rolls by itself and old keys expire (TTL window + 1 period).
 */
import { usdToMicros } from './options.js';
import type { LimitMetric, LimitScope, RateLimitOptions } from './options.js';
import type { CounterKind, Decision, LimitHit, LimitKeys, LimitAmounts, RateLimitInfo, Reservation, ReservedCounter, ReserveRequest } from './types.js';

const MINUTE = 60_000;
const DAY = 86_400_000;

export interface CompiledRule {
  readonly index: number;
  readonly scope: LimitScope;
  readonly model?: string | undefined;
  readonly route?: string | undefined;
  readonly metrics: readonly { readonly metric: LimitMetric; readonly limit: number }[];
}

/** One counter of a request's plan. */
export interface PlannedCounter {
  readonly key: string;
  readonly base: string;
  readonly kind: CounterKind;
  readonly metric: LimitMetric;
  readonly limit: number;
  readonly amount: number;
  readonly window: number;
  /** When the window ends (ms epoch; concurrency: now). */
  readonly resetAt: number;
  /** TTL to give a windowed key (ms). */
  readonly ttlMs: number;
  readonly rule: number;
  readonly scope: LimitScope;
}

export function compileRules(options: Pick<RateLimitOptions, 'limits'>): CompiledRule[] {
  return options.limits.map((r, index) => {
    const metrics: { metric: LimitMetric; limit: number }[] = [];
    for (const metric of ['requestsPerMinute', 'inputTokensPerMinute', 'outputTokensPerMinute', 'concurrentStreams'] as const) {
      const v = r[metric];
      if (v !== undefined) metrics.push({ metric, limit: v });
    }
    if (r.usdPerDay !== undefined) metrics.push({ metric: 'usdPerDay', limit: usdToMicros(r.usdPerDay) });
    if (r.usdPerMonth !== undefined) metrics.push({ metric: 'usdPerMonth', limit: usdToMicros(r.usdPerMonth) });
    return { index, scope: r.scope, model: r.model, route: r.route, metrics };
  });
}

const enc = (s: string): string => (/^[\w.@-]*$/.test(s) ? s : encodeURIComponent(s));

/** The scope key of a rule for a request, or undefined when the rule does not apply. */
export function scopeKey(rule: CompiledRule, keys: { caller: string; model?: string | undefined; route?: string | undefined }): string | undefined {
  if (rule.model !== undefined && rule.model !== keys.model) return undefined;
  if (rule.route !== undefined && rule.route !== keys.route) return undefined;
  switch (rule.scope) {
    case 'caller':
      return `c:${enc(keys.caller)}`;
    case 'caller-model':
      return keys.model === undefined ? undefined : `cm:${enc(keys.caller)}:${enc(keys.model)}`;
    case 'route':
      return keys.route === undefined ? undefined : `r:${enc(keys.route)}`;
    case 'model':
      return keys.model === undefined ? undefined : `m:${enc(keys.model)}`;
  }
}

/** Month index since 1970 (UTC) and the month's end. */
function monthWindow(now: number): { index: number; end: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return { index: y * 12 + m, end: Date.UTC(y, m + 1, 1) };
}

/** Window index and end for a metric at `now`. */
export function windowOf(metric: LimitMetric, now: number): { index: number; end: number; period: number } {
  switch (metric) {
    case 'usdPerDay': {
      const index = Math.floor(now / DAY);
      return { index, end: (index + 1) * DAY, period: DAY };
    }
    case 'usdPerMonth': {
      const w = monthWindow(now);
      return { ...w, period: 31 * DAY };
    }
    case 'concurrentStreams':
      return { index: 0, end: now, period: 0 };
    default: {
      const index = Math.floor(now / MINUTE);
      return { index, end: (index + 1) * MINUTE, period: MINUTE };
    }
  }
}

const SHORT: Record<LimitMetric, string> = {
  requestsPerMinute: 'rpm',
  inputTokensPerMinute: 'itpm',
  outputTokensPerMinute: 'otpm',
  concurrentStreams: 'conc',
  usdPerDay: 'usdd',
  usdPerMonth: 'usdm',
};

/** `v` as a counter amount: a whole non-negative number. */
function whole(v: number): number {
  return Number.isFinite(v) && v > 0 ? Math.ceil(v) : 0;
}

/** What a request adds to a counter of `metric` (whole, non-negative: counters are integers). */
export function amountFor(metric: LimitMetric, a: LimitAmounts): number {
  switch (metric) {
    case 'requestsPerMinute':
    case 'concurrentStreams':
      return 1;
    case 'inputTokensPerMinute':
      return whole(a.inputTokens);
    case 'outputTokensPerMinute':
      return whole(a.outputTokens);
    case 'usdPerDay':
    case 'usdPerMonth':
      return whole(a.costMicros);
  }
}

/** Key of a counter family + window. */
export function counterKey(base: string, metric: LimitMetric, window: number): string {
  return metric === 'concurrentStreams' ? base : `${base}:${window}`;
}

/**
 * The counters a request touches. Rules with the same scope key and metric share one counter
 * (usage is counted once and checked against the smallest limit).
 */
export function planCounters(rules: readonly CompiledRule[], keys: LimitKeys, amounts: LimitAmounts, now: number): PlannedCounter[] {
  const out = new Map<string, PlannedCounter>();
  for (const rule of rules) {
    const sk = scopeKey(rule, keys);
    if (sk === undefined) continue;
    for (const { metric, limit } of rule.metrics) {
      const base = `${sk}:${SHORT[metric]}`;
      const w = windowOf(metric, now);
      const key = counterKey(base, metric, w.index);
      const prev = out.get(key);
      if (prev && prev.limit <= limit) continue;
      out.set(key, {
        key,
        base,
        kind: metric === 'concurrentStreams' ? 'c' : metric === 'usdPerDay' || metric === 'usdPerMonth' ? 'b' : 'w',
        metric,
        limit,
        amount: amountFor(metric, amounts),
        window: w.index,
        resetAt: w.end,
        ttlMs: w.end - now + w.period,
        rule: rule.index,
        scope: rule.scope,
      });
    }
  }
  return [...out.values()];
}

/**
 * Header figures from the counters' usage: the tightest requests-per-minute counter and the
 * tightest token counter (input or output per minute). `used` is the value before this request;
 * `admitted` adds its own amounts.
 */
export function rateLimitInfo(counters: readonly PlannedCounter[], used: readonly number[], admitted: boolean, now: number): RateLimitInfo {
  let requests: { limit: number; remaining: number; resetMs: number } | undefined;
  let tokens: { limit: number; remaining: number; resetMs: number } | undefined;
  for (let i = 0; i < counters.length; i++) {
    const c = counters[i]!;
    const isReq = c.metric === 'requestsPerMinute';
    const isTok = c.metric === 'inputTokensPerMinute' || c.metric === 'outputTokensPerMinute';
    if (!isReq && !isTok) continue;
    const after = (used[i] ?? 0) + (admitted ? c.amount : 0);
    const fig = { limit: c.limit, remaining: Math.max(0, c.limit - after), resetMs: Math.max(0, c.resetAt - now) };
    if (isReq && (!requests || fig.remaining < requests.remaining)) requests = fig;
    if (isTok && (!tokens || fig.remaining < tokens.remaining)) tokens = fig;
  }
  const info: { requests?: typeof requests; tokens?: typeof tokens } = {};
  if (requests) info.requests = requests;
  if (tokens) info.tokens = tokens;
  return info as RateLimitInfo;
}

/** Whether a counter refuses the request given its current value. */
export function violates(c: PlannedCounter, used: number): boolean {
  if (c.kind === 'b') return used >= c.limit;
  return used + c.amount > c.limit;
}

/** How long until a refused counter can admit: its window's end, or `concurrencyRetryMs`. */
export function retryAfter(c: PlannedCounter, now: number, concurrencyRetryMs: number): number {
  return c.kind === 'c' ? concurrencyRetryMs : Math.max(1, c.resetAt - now);
}

/**
 * The refusal for counters at `used` (every backend reads them its own way): each limit they
 * break, the first as the one to report, and the longest wait among them; undefined when none
 * is broken.
 */
export function refusalOf(plan: readonly PlannedCounter[], used: readonly number[], now: number, concurrencyRetryMs: number): Extract<Decision, { admitted: false }> | undefined {
  let hits: LimitHit[] | undefined;
  let retryAfterMs = 0;
  for (let i = 0; i < plan.length; i++) {
    const c = plan[i]!;
    if (!violates(c, used[i]!)) continue;
    (hits ??= []).push({ rule: c.rule, scope: c.scope, metric: c.metric, limit: c.limit, used: used[i]! });
    retryAfterMs = Math.max(retryAfterMs, retryAfter(c, now, concurrencyRetryMs));
  }
  return hits === undefined ? undefined : { admitted: false, retryAfterMs, limit: hits[0]!, hits, info: rateLimitInfo(plan, used, false, now) };
}

/**
 * For settling a windowed counter: the key and delta to apply. The reservation's own window
 * when it is still current; after it rolled, a positive difference goes to the current window
 * (the next requests must see the overrun) and a refund is dropped (the old window is gone).
 */
export function settleTarget(
  c: { key: string; base: string; metric: LimitMetric; window: number },
  delta: number,
  now: number,
): { key: string; delta: number; ttlMs: number } | undefined {
  if (delta === 0) return undefined;
  const w = windowOf(c.metric, now);
  if (w.index === c.window) return { key: c.key, delta, ttlMs: w.end - now + w.period };
  if (delta < 0) return undefined;
  return { key: counterKey(c.base, c.metric, w.index), delta, ttlMs: w.end - now + w.period };
}

/** The budget counters that apply to a caller (caller scope; caller-model when a model is given). */
export function budgetCounters(
  rules: readonly CompiledRule[],
  keys: { caller: string; model?: string | undefined; route?: string | undefined },
  now: number,
): { key: string; rule: number; scope: LimitScope; period: 'day' | 'month'; limit: number }[] {
  const out: { key: string; rule: number; scope: LimitScope; period: 'day' | 'month'; limit: number }[] = [];
  for (const rule of rules) {
    if (rule.scope !== 'caller' && rule.scope !== 'caller-model') continue;
    const sk = scopeKey(rule, keys);
    if (sk === undefined) continue;
    for (const { metric, limit } of rule.metrics) {
      if (metric !== 'usdPerDay' && metric !== 'usdPerMonth') continue;
      const w = windowOf(metric, now);
      out.push({ key: counterKey(`${sk}:${SHORT[metric]}`, metric, w.index), rule: rule.index, scope: rule.scope, period: metric === 'usdPerDay' ? 'day' : 'month', limit });
    }
  }
  return out;
}

/** What a reservation keeps of a planned counter. */
function reservedCounter(c: PlannedCounter): ReservedCounter {
  return { key: c.key, base: c.base, kind: c.kind, metric: c.metric, amount: c.amount, window: c.window };
}

/** The reservation an admitted request holds until it settles: what each backend returns. */
export function newReservation(id: string, backend: Reservation['backend'], request: ReserveRequest, plan: readonly PlannedCounter[], now: number): Reservation {
  return {
    id,
    backend,
    keys: { caller: request.caller, model: request.model, route: request.route },
    estimate: request.estimate,
    counters: plan.map(reservedCounter),
    createdAt: now,
    done: false,
  };
}
