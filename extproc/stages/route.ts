/**
 * @module stages/route
 * The `route` stage (router filter, after `parse-request` and, when configured, `identity`):
 * decides which route and chain serve a request (extproc/routing/) and has Envoy carry it out.
 *
 * - Request headers: the client API surface the gateway answers itself (apiSurface.ts):
 *   `GET /v1/models[/{id}]` from the catalog, a 404 in the client's dialect for any other path
 *   under `/v1/` it does not serve. No body round trip.
 * - Request body (`/v1/chat/completions`, `/v1/messages`): `decideRoute` on the caller, the
 *   `x-model-preference` / `x-max-latency-ms` headers, the body's model and the prompt, with the
 *   steps cooled down now; then `x-gateway-cluster` = the chain cluster from the first healthy
 *   step (`chain_<route>_from_<k>`), `clear_route_cache`, and the chain's retry signals
 *   (`x-envoy-max-retries`, `-retry-on`, `-retriable-status-codes`,
 *   `-upstream-rq-per-try-timeout-ms`). What the attempt stage needs on any replica (route,
 *   start step, client dialect, stream flags) is carried as `ai_gateway` dynamic metadata.
 *   `/v1/embeddings`, `/v1/responses` and `/v1/messages/count_tokens` go to a provider of their
 *   own dialect (its cluster, its credential; no translation).
 * - Response headers: `x-gateway-route`, `x-gateway-model` (the model that served: the attempt
 *   stage's `ai_gateway.served_model`, which Envoy forwards back to this filter) and
 *   `x-gateway-attempts`; Anthropic's 529 becomes 503 for OpenAI clients; the model's latency
 *   average is fed.
 */
import { slot } from '../pipeline/exchange.js';
import type { Exchange } from '../pipeline/exchange.js';
import { carried } from '../pipeline/carry.js';
import type { PhaseOutput } from '../pipeline/output.js';
import type { Stage, StageDeps, StageFactory, StepResult } from '../pipeline/stage.js';
import type { GatewayConfig } from '../config/schema.js';
import {
  anthropicToOpenAIRequest,
  dialectForUnknownPath,
  dialectOfPath,
  openaiToAnthropicRequest,
  plainOpenAIChat,
  TranslationError,
  type ApiKind,
  type Dialect,
  type OpenAIChatRequest,
  type PathInfo,
} from '../providers/index.js';
import { ANTHROPIC_VERSION, CREDENTIAL_HEADERS, credentialHeaders, dialectOfApi, type ProviderApiName } from '../providers/upstream.js';
import {
  buildCatalog,
  CLUSTER_HEADER,
  decideRoute,
  MemoryCooldownStore,
  routingOptionsSchema,
  type Catalog,
  type ChainStep,
  type CooldownStore,
  type RouteDecision,
  type RoutingOptions,
} from '../routing/index.js';
import { sharedCooldownStore, sharedLatency } from '../routing/services.js';
import { describeError } from '../telemetry/logger.js';
import { dialectError, modelsReply, unknownModelReply, unknownPathReply } from './apiSurface.js';
import { NO_HEADERS } from '../identity/index.js';
import { callerIdentity } from './identity.js';
import { budgetUsage } from './rateLimitSlots.js';
import { requestSummary } from './parseRequest.js';

/**
 * What the attempt stage of the same request needs, on whichever replica it runs (small, no
 * request content): the route, the chain's start step, the client's dialect and what it asked
 * of the stream. A type alias (not an interface) so it is a metadata value.
 */
export type RouteCarry = {
  route: string;
  /** Index in the route's full chain of the step Envoy tries first. */
  start: number;
  /** The client's dialect: what every answer must be translated back to. */
  dialect: Dialect;
  stream: boolean;
  /** The client asked for OpenAI's final usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean;
  /** The model the client asked for (resolved), or null. */
  requested: string | null;
};

/** The carried value (`ai_gateway.carry_route`). */
export const routeCarry = carried<RouteCarry>('route');

/** What the route stage decided, for later router stages (limits, usage, logs). */
export interface RouteChoice {
  /** Route name, or `pinned` for an API served by one provider (embeddings, responses, count_tokens). */
  readonly route: string;
  /** Models Envoy may try, in order. */
  readonly chain: readonly string[];
  /** Index in the route's full chain of `chain[0]`. */
  readonly start: number;
  readonly cluster: string;
  readonly dialect: Dialect;
  readonly api: ApiKind;
  readonly requested: string | undefined;
  /** performance.now() when the decision was made (latency average). */
  readonly decidedAt: number;
}

/** Slot written by `route`. */
export const routeChoice = slot<RouteChoice>('routeChoice');

/** Response headers the client learns the outcome from. */
export const ROUTE_HEADER = 'x-gateway-route';
export const MODEL_HEADER = 'x-gateway-model';
export const ATTEMPTS_HEADER = 'x-gateway-attempts';

/** Longest the route waits for shared cooldown state before deciding without it. */
const COOLDOWN_READ_MS = 25;

interface ProviderEntry {
  readonly name: string;
  readonly api: ProviderApiName;
  readonly cluster: string;
  readonly apiKey: string | undefined;
}

function providersOf(deps: StageDeps): ProviderEntry[] {
  return Object.entries(deps.catalog.providers).map(([name, p]) => {
    const v = p as { api: ProviderApiName; cluster: string; apiKey?: string };
    return { name, api: v.api, cluster: v.cluster, apiKey: v.apiKey || undefined };
  });
}

/** The config as buildCatalog reads it (providers, models, routes). */
export function routingConfigOf(deps: StageDeps): GatewayConfig {
  return deps.config ?? (deps.catalog as unknown as GatewayConfig);
}

/** True when the config runs the attempt stage, which rewrites each try for its step. */
function attemptStageConfigured(deps: StageDeps): boolean {
  return (deps.config?.pipeline.stages ?? []).some((e) => (typeof e === 'string' ? e : e.name) === 'translate');
}

/** Which provider APIs can serve a pinned API path. */
const PINNED_APIS: Partial<Record<ApiKind, readonly ProviderApiName[]>> = {
  embeddings: ['openai', 'mistral'],
  responses: ['openai'],
  count_tokens: ['anthropic'],
};

function hintOf(x: Exchange): { anthropic: boolean } {
  const h = x.requestHeaders;
  return { anthropic: h !== undefined && (h.has('anthropic-version') || h.has('x-api-key')) };
}

/** Status of Anthropic's "overloaded", which OpenAI's clients do not know. */
const OVERLOADED = 529;

class RouteStage implements Stage {
  readonly name = 'route';
  // On a bug the request goes on undecided: Envoy's default route still runs the default chain.
  readonly failure = 'open' as const;
  private readonly catalog: Catalog;
  private readonly providers: ProviderEntry[];
  private readonly cooldown: CooldownStore;
  private readonly latency;
  private readonly rewriteModel: boolean;
  private readonly loadedAt = new Date();

  constructor(options: RoutingOptions, deps: StageDeps) {
    this.catalog = buildCatalog(routingConfigOf(deps), { onUnknownModel: options.onUnknownModel });
    this.providers = providersOf(deps);
    this.cooldown = sharedCooldownStore(deps.services, options.cooldown);
    this.latency = sharedLatency(deps.services, options.latencyAlpha);
    // Without the attempt stage nothing rewrites a try for its step: the router names the first
    // step's model itself (same dialect only; a cross-dialect chain needs the attempt stage).
    this.rewriteModel = !attemptStageConfigured(deps);
  }

  requestHeaders(x: Exchange, out: PhaseOutput): void {
    const path = x.requestHeaders?.get(':path');
    if (path === undefined || !path.startsWith('/v1/')) return;
    const hint = hintOf(x);
    const info = dialectOfPath(path, hint);
    if (!info) {
      out.respond(unknownPathReply(dialectForUnknownPath(hint), path));
      return;
    }
    const method = x.requestHeaders?.get(':method') ?? 'GET';
    if (info.api === 'models') {
      if (method !== 'GET' && method !== 'HEAD') out.respond(dialectError(info.dialect, 405, `${method} is not allowed on /v1/models`, { code: 'method_not_allowed' }));
      else out.respond(modelsReply(this.catalog, info.dialect, info.modelId, this.loadedAt));
      return;
    }
    // A request without a body (GET /v1/responses/{id}) gets no body phase: pin it now.
    if ((method === 'GET' || method === 'DELETE') && PINNED_APIS[info.api]) this.pin(x, out, info, undefined);
  }

  requestBody(x: Exchange, out: PhaseOutput): StepResult {
    const path = x.requestHeaders?.get(':path');
    if (path === undefined) return;
    const info = dialectOfPath(path, hintOf(x));
    if (!info || info.api === 'models') return;
    const summary = x.get(requestSummary);
    if (!summary) return; // parse-request let an unreadable body through untouched
    if (info.api !== 'chat' && info.api !== 'messages') {
      this.pin(x, out, info, summary.body['model']);
      return;
    }
    const keys = this.catalog.cooldownKeys;
    // The rate-limit stage (when configured) started reading the caller's budget use at request
    // headers; a rule `budgetUsedAbove` steers a nearly spent caller to a cheaper chain.
    const budget = x.get(budgetUsage);
    if (this.cooldown instanceof MemoryCooldownStore && budget === undefined) {
      this.decide(x, out, info, this.cooldown.cooledNow(keys, Date.now()), undefined);
      return;
    }
    return this.decideShared(x, out, info, keys, budget);
  }

  private async decideShared(x: Exchange, out: PhaseOutput, info: PathInfo, keys: readonly string[], budget: Promise<number> | undefined): Promise<void> {
    let cooled: ReadonlySet<string> | undefined;
    let budgetUsedFraction: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), COOLDOWN_READ_MS)));
      const cooledRead = this.cooldown instanceof MemoryCooldownStore ? Promise.resolve(this.cooldown.cooledNow(keys, Date.now())) : this.cooldown.cooledAmong(keys, Date.now());
      // A budget that cannot be read in time routes as if none were spent (limits still apply).
      const budgetRead = budget ? Promise.race([budget.catch(() => undefined), deadline]) : Promise.resolve(undefined);
      [cooled, budgetUsedFraction] = await Promise.all([Promise.race([cooledRead, deadline]), budgetRead]);
      if (cooled === undefined) x.log.warn('cooldown state not read in time; routing without it', { timeout_ms: COOLDOWN_READ_MS });
    } catch (err) {
      // Shared state unavailable: route as if nothing were cooled (Envoy's retries still fall over).
      x.log.warn('cooldown state unavailable; routing without it', { error: describeError(err) });
    } finally {
      clearTimeout(timer);
    }
    this.decide(x, out, info, cooled, budgetUsedFraction);
  }

  private decide(x: Exchange, out: PhaseOutput, info: PathInfo, cooled: ReadonlySet<string> | undefined, budgetUsedFraction: number | undefined): void {
    const summary = x.get(requestSummary)!;
    const caller = x.get(callerIdentity)?.caller ?? 'anonymous';
    const headers = x.requestHeaders;
    const decision = decideRoute(
      { model: summary.body['model'], body: summary.body },
      { caller, headers: headers ? headers.get.bind(headers) : NO_HEADERS, latency: this.latency, ...(cooled ? { cooled } : {}), ...(budgetUsedFraction !== undefined ? { budgetUsedFraction } : {}) },
      this.catalog,
    );
    if (!decision.ok) {
      if (x.logs('info')) x.log.info('request not routed', { reason: decision.code });
      if (decision.code === 'unknown_model') out.respond(unknownModelReply(info.dialect, String(summary.body['model'])));
      else out.respond(dialectError(info.dialect, 400, decision.message, decision.code === 'invalid_model' ? { param: 'model' } : {}));
      return;
    }
    this.apply(x, out, info, decision, summary.stream, summary.body);
  }

  private apply(x: Exchange, out: PhaseOutput, info: PathInfo, d: RouteDecision, stream: boolean, body: Readonly<Record<string, unknown>>): void {
    let headers = d.headers;
    let chain = d.chain;
    if (!this.rewriteModel) {
      // A request the other dialect cannot express (e.g. `n: 3` for Anthropic) must not reach an
      // attempt that would have to refuse it: Envoy 1.36 ignores an upstream filter's immediate
      // response and the try would hang until its timeout. The chain ends before such a step.
      const usable = this.expressibleSteps(d.chain, info.dialect, body);
      if (usable.steps === 0) {
        out.respond(dialectError(info.dialect, 400, `${usable.error!.message} (model ${d.chain[0]!.model})`, usable.error!.param !== undefined ? { param: usable.error!.param } : {}));
        return;
      }
      if (usable.steps < d.chain.length) {
        chain = d.chain.slice(0, usable.steps);
        headers = d.route.headers[d.chain[0]!.index]![usable.steps - 1]!;
      }
    }
    for (const name in headers) out.setHeader(name, headers[name]!);
    // Routing hints are for the gateway, not the provider.
    out.removeHeader('x-model-preference');
    out.removeHeader('x-max-latency-ms');
    out.clearRouteCache = true;
    const first = d.chain[0]!;
    const opts = body['stream_options'];
    const includeUsage = opts !== null && typeof opts === 'object' && (opts as { include_usage?: unknown }).include_usage === true;
    out.carry(routeCarry, { route: d.route.name, start: first.index, dialect: info.dialect, stream, includeUsage, requested: d.requested ?? null });
    out.setMetadata('ai_gateway', 'route', d.route.name);
    if (d.requested !== undefined) out.setMetadata('ai_gateway', 'requested_model', d.requested);
    x.set(routeChoice, {
      route: d.route.name,
      chain: chain.map((s) => s.model),
      start: first.index,
      cluster: d.cluster,
      dialect: info.dialect,
      api: info.api,
      requested: d.requested,
      decidedAt: performance.now(),
    });
    if (x.logs('debug')) x.log.debug('routed', { reason: d.reason, cluster: d.cluster, complexity: Math.round(d.complexity * 1000) / 1000 });
    if (this.rewriteModel && dialectOfApi(first.api) === info.dialect && body['model'] !== first.upstreamName) {
      x.editRequest((json) => {
        (json as Record<string, unknown>)['model'] = first.upstreamName;
      });
    }
  }

  /** How many steps of `chain`, from its start, the request can be expressed for (translated once per dialect). */
  private expressibleSteps(chain: readonly ChainStep[], client: Dialect, body: Readonly<Record<string, unknown>>): { steps: number; error?: TranslationError } {
    let foreign: TranslationError | null | undefined; // undefined: not tried yet; null: fine
    for (let i = 0; i < chain.length; i++) {
      if (dialectOfApi(chain[i]!.api) === client) continue;
      if (foreign === undefined) {
        // Plain text chats translate for sure: no trial translation for them (it ran per request).
        if (client === 'openai' && plainOpenAIChat(body)) {
          foreign = null;
          continue;
        }
        try {
          if (client === 'openai') openaiToAnthropicRequest(body as unknown as OpenAIChatRequest, { model: chain[i]!.upstreamName, defaultMaxTokens: 1 });
          else anthropicToOpenAIRequest(body as Record<string, unknown>, { model: chain[i]!.upstreamName });
          foreign = null;
        } catch (err) {
          if (!(err instanceof TranslationError)) throw err;
          foreign = err;
        }
      }
      if (foreign) return { steps: i, error: foreign };
    }
    return { steps: chain.length };
  }

  /**
   * An API served by one provider of its own dialect (embeddings, responses, count_tokens): the
   * provider of the model asked for when it can serve the API, else the first that can. Its
   * cluster has no attempt filter, so the credential is set here.
   */
  private pin(x: Exchange, out: PhaseOutput, info: PathInfo, model: unknown): void {
    const apis = PINNED_APIS[info.api]!;
    const m = typeof model === 'string' ? this.catalog.byName.get(model) : undefined;
    const provider = (m && this.providers.find((p) => p.name === m.provider && apis.includes(p.api))) ?? this.providers.find((p) => apis.includes(p.api));
    if (!provider) {
      out.respond(dialectError(info.dialect, 404, `no configured provider serves ${info.api}`, { code: 'unknown_url' }));
      return;
    }
    out.setHeader(CLUSTER_HEADER, provider.cluster);
    out.setHeader('x-envoy-max-retries', '0');
    out.clearRouteCache = true;
    if (provider.apiKey) {
      for (const h of CREDENTIAL_HEADERS) out.removeHeader(h);
      const creds = credentialHeaders(provider.api, provider.apiKey);
      for (const name in creds) out.setHeader(name, creds[name]!);
      if (provider.api === 'anthropic' && !x.requestHeaders?.has('anthropic-version')) out.setHeader('anthropic-version', ANTHROPIC_VERSION);
    }
    const served = m && m.provider === provider.name ? m : undefined;
    if (served && model !== served.upstreamName) {
      x.editRequest((json) => {
        (json as Record<string, unknown>)['model'] = served.upstreamName;
      });
    }
    const modelName = served?.name ?? (typeof model === 'string' ? model.slice(0, 100) : '');
    out.setMetadata('ai_gateway', 'route', 'pinned');
    out.setMetadata('ai_gateway', 'provider', provider.name);
    if (modelName) out.setMetadata('ai_gateway', 'model', modelName);
    x.set(routeChoice, {
      route: 'pinned',
      chain: modelName ? [modelName] : [],
      start: 0,
      cluster: provider.cluster,
      dialect: info.dialect,
      api: info.api,
      requested: served?.name,
      decidedAt: performance.now(),
    });
  }

  responseHeaders(x: Exchange, out: PhaseOutput): void {
    const choice = x.get(routeChoice);
    if (!choice) return;
    const md = x.metadata['ai_gateway'] as Record<string, unknown> | undefined;
    const servedModel = typeof md?.['served_model'] === 'string' ? md['served_model'] : choice.chain[0];
    const rawStep = md?.['served_step'];
    const servedStep = typeof rawStep === 'number' ? rawStep : typeof rawStep === 'string' && /^\d+$/.test(rawStep) ? Number(rawStep) : choice.start;
    const attempts = Math.max(1, servedStep - choice.start + 1);
    out.setHeader(ROUTE_HEADER, choice.route);
    if (servedModel) out.setHeader(MODEL_HEADER, servedModel);
    out.setHeader(ATTEMPTS_HEADER, String(attempts));
    out.setMetadata('ai_gateway', 'attempts', attempts);
    const status = x.responseStatus;
    if (status === OVERLOADED && choice.dialect === 'openai') out.setHeader(':status', '503');
    if (servedModel && status !== undefined && status < 400) this.latency.observe(servedModel, performance.now() - choice.decidedAt);
  }
}

/** The route stage. */
export const routeStage: StageFactory<RoutingOptions> = {
  name: 'route',
  options: routingOptionsSchema,
  reads: [requestSummary],
  writes: [routeChoice],
  create: (options, deps) => new RouteStage(options, deps),
};
