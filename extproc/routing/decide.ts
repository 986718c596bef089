/**
 * @module routing/decide
 * The routing decision: the first rule (in config order) whose conditions all hold and whose
 * chain can take the request serves it; the last rule is a default.
 *
 * Per rule, a step is *usable* when the prompt fits its context window (estimated prompt +
 * requested output tokens) and it has the capabilities the request needs (tools, vision, JSON
 * output); for a `withinLatency` rule also when its observed latency is within
 * `x-max-latency-ms`. The chain starts at the first usable step that is not cooled down (else
 * the first usable one) and runs until the first later step that cannot take the prompt: Envoy
 * walks priorities in order and cannot skip one, so the retry count stops before it. A rule
 * with no usable step does not match.
 */
import type { Catalog, ChainStep, CompiledRoute } from './catalog.js';
import type { LatencyView } from './latency.js';
import { complexityScore, summarizePrompt, type PromptSummary } from './complexity.js';
import type { HeaderLookup } from '../identity/resolve.js';

/** What the decision reads about the request body. */
export interface RouteRequest {
  /** The body's `model` as sent (any JSON value; undefined when absent). */
  readonly model: unknown;
  /** The parsed body (for the prompt summary), unless `prompt` is given. */
  readonly body?: Readonly<Record<string, unknown>>;
  /** A prompt summary computed earlier (saves a pass over the body). */
  readonly prompt?: PromptSummary;
}

/** Everything else the decision depends on. */
export interface RouteContext {
  readonly caller: string;
  readonly headers: HeaderLookup;
  readonly latency?: LatencyView;
  /** Fraction of the caller's budget used (0..1), when known. */
  readonly budgetUsedFraction?: number;
  /** Cooldown keys (`<provider>/<model>`) cooled now (CooldownStore.cooledAmong). */
  readonly cooled?: ReadonlySet<string>;
}

export interface RouteDecision {
  readonly ok: true;
  readonly route: CompiledRoute;
  /** Steps Envoy may try, in order (`chain[0]` is the start step). */
  readonly chain: readonly ChainStep[];
  /** Envoy cluster and request headers to set (x-gateway-cluster + retry signals). */
  readonly cluster: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Resolved model the client asked for (preference header, else body), if any. */
  readonly requested?: string;
  readonly complexity: number;
  /** Why, for logs (no request content). */
  readonly reason: string;
}

export interface RouteRefusal {
  readonly ok: false;
  readonly code: 'invalid_model' | 'unknown_model' | 'no_route';
  /** Safe to show the client. */
  readonly message: string;
}

export const MODEL_PREFERENCE_HEADER = 'x-model-preference';
export const MAX_LATENCY_HEADER = 'x-max-latency-ms';

function stepTakes(step: ChainStep, p: PromptSummary): boolean {
  if (step.contextWindow !== undefined && p.promptTokens + p.maxOutputTokens > step.contextWindow) return false;
  const c = step.capabilities;
  if (p.tools > 0 && c.tools === false) return false;
  if (p.images > 0 && c.vision === false) return false;
  if (p.json && c.json === false) return false;
  return true;
}

/** Decides the route and chain of one request. Never throws on request input. */
export function decideRoute(request: RouteRequest, ctx: RouteContext, catalog: Catalog): RouteDecision | RouteRefusal {
  let bodyModel: string | undefined;
  if (request.model !== undefined && request.model !== null) {
    if (typeof request.model !== 'string') {
      return { ok: false, code: 'invalid_model', message: '"model" must be a string' };
    }
    const m = catalog.byName.get(request.model);
    if (m) bodyModel = m.name;
    else if (catalog.onUnknownModel === 'refuse') {
      // The name is the client's own input; bound it so the answer stays small.
      return { ok: false, code: 'unknown_model', message: `unknown model "${request.model.slice(0, 100)}"` };
    }
  }
  const prefRaw = ctx.headers(MODEL_PREFERENCE_HEADER)?.trim();
  const preferred = prefRaw ? catalog.byName.get(prefRaw)?.name : undefined;
  const requested = preferred ?? bodyModel;
  const requestedTier = requested !== undefined ? catalog.models.get(requested)?.costTier : undefined;

  const prompt = request.prompt ?? summarizePrompt(request.body);
  let complexity = -1; // computed on first use
  let maxLatency: number | undefined | null = null; // null: not read yet
  const skipped: string[] = [];

  for (const route of catalog.routes) {
    const m = route.match;
    if (!m.isDefault) {
      if (m.caller && !m.caller(ctx.caller)) continue;
      if (m.model && (bodyModel === undefined || !m.model.has(bodyModel))) continue;
      if (m.preference && (preferred === undefined || !m.preference.has(preferred))) continue;
      if (m.costTier && (requestedTier === undefined || !m.costTier.has(requestedTier))) continue;
      if (m.budgetUsedAbove !== undefined && !(ctx.budgetUsedFraction !== undefined && ctx.budgetUsedFraction > m.budgetUsedAbove)) continue;
      if (m.complexityMin !== undefined || m.complexityMax !== undefined) {
        if (complexity < 0) complexity = complexityScore(prompt);
        if (m.complexityMin !== undefined && complexity < m.complexityMin) continue;
        if (m.complexityMax !== undefined && complexity > m.complexityMax) continue;
      }
      if (m.withinLatency) {
        if (maxLatency === null) {
          const raw = ctx.headers(MAX_LATENCY_HEADER)?.trim();
          maxLatency = raw !== undefined && /^\d{1,9}$/.test(raw) ? Number(raw) : undefined;
        }
        if (maxLatency === undefined) continue;
      }
    }
    // Start step: first usable and not cooled, else first usable.
    const steps = route.steps;
    let start = -1;
    let firstUsable = -1;
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      if (!stepTakes(s, prompt)) continue;
      if (m.withinLatency) {
        const avg = ctx.latency?.get(s.model);
        // No observation yet: no evidence against the model.
        if (avg !== undefined && avg > (maxLatency as number)) continue;
      }
      if (firstUsable < 0) firstUsable = i;
      if (!ctx.cooled?.has(s.cooldownKey)) {
        start = i;
        break;
      }
    }
    const cooledStart = start < 0;
    if (start < 0) start = firstUsable;
    if (start < 0) {
      skipped.push(route.name);
      continue;
    }
    let end = start + 1;
    while (end < steps.length && stepTakes(steps[end]!, prompt)) end++;
    if (complexity < 0) complexity = complexityScore(prompt);
    const reason =
      `route "${route.name}"` +
      (start > 0 ? `, starts at step ${start} (${steps[start]!.model})` : '') +
      (cooledStart && firstUsable >= 0 && ctx.cooled?.size ? ', every usable step cooled' : '') +
      (end < steps.length ? `, stops before step ${end} (cannot take the prompt)` : '') +
      (skipped.length ? `; skipped ${skipped.join(', ')} (no step can take the prompt)` : '');
    return {
      ok: true,
      route,
      chain: steps.slice(start, end),
      cluster: route.clusters[start]!,
      headers: route.headers[start]![end - start - 1]!,
      ...(requested !== undefined ? { requested } : {}),
      complexity,
      reason,
    };
  }
  const needs = [prompt.tools > 0 ? 'tools' : '', prompt.images > 0 ? 'vision' : '', prompt.json ? 'JSON output' : ''].filter(Boolean);
  return {
    ok: false,
    code: 'no_route',
    message: `no configured model can take this request (about ${prompt.promptTokens + prompt.maxOutputTokens} tokens${needs.length ? `, needs ${needs.join(', ')}` : ''})`,
  };
}
