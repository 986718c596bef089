/**
 * @module routing/catalog
 * The routing view of a validated config, built once per config (re)load: models with their
 * aliases resolved, routes compiled into match predicates and chains, and for each route and
 * start step the Envoy cluster and retry headers precomputed, so a decision allocates little.
 *
 * The config schema has already refused unknown models, alias collisions and a missing default
 * route; this module trusts that and only compiles.
 */
import { defaultProviderHosts, type GatewayConfig, type providerApis } from '../config/schema.js';
import { compileCallerPatterns } from './glob.js';
import { DEFAULT_CHAIN_CLUSTER, chainClusterName, envoyRetryPolicy, retryHeaders, type EnvoyRetryPolicy } from './envoyChain.js';

export type ProviderApi = (typeof providerApis)[number];
export type CostTier = 'cheap' | 'standard' | 'premium';

/** A model as routing sees it. */
export interface CatalogModel {
  readonly name: string;
  readonly provider: string;
  readonly api: ProviderApi;
  /** Name sent to the provider. */
  readonly upstreamName: string;
  readonly contextWindow?: number;
  readonly capabilities: { readonly tools?: boolean; readonly vision?: boolean; readonly json?: boolean };
  readonly costTier?: CostTier;
}

/** One step of a chain: what Envoy's priority `index` of the route's chain clusters serves. */
export interface ChainStep {
  /** Position in the route's full chain (0 = `model`, 1.. = `fallback`), also the endpoint metadata `step`. */
  readonly index: number;
  readonly model: string;
  readonly provider: string;
  readonly api: ProviderApi;
  readonly upstreamName: string;
  /** Provider's per-provider Envoy cluster (pinned routes). */
  readonly cluster: string;
  /** Provider API host and port (the chain clusters' endpoint). */
  readonly host: string;
  readonly port: number;
  /** Cooldown key: `<provider>/<model>`. */
  readonly cooldownKey: string;
  readonly contextWindow?: number;
  readonly capabilities: CatalogModel['capabilities'];
}

/** A route's match, compiled. Absent conditions are undefined. */
export interface CompiledMatch {
  readonly caller?: (caller: string) => boolean;
  readonly preference?: ReadonlySet<string>;
  readonly model?: ReadonlySet<string>;
  readonly costTier?: ReadonlySet<string>;
  readonly complexityMin?: number;
  readonly complexityMax?: number;
  readonly withinLatency: boolean;
  readonly budgetUsedAbove?: number;
  /** No condition at all: a default route. */
  readonly isDefault: boolean;
}

export interface CompiledRoute {
  readonly name: string;
  readonly index: number;
  readonly match: CompiledMatch;
  readonly steps: readonly ChainStep[];
  readonly retry: EnvoyRetryPolicy;
  /** Envoy cluster per start step (`chain_<route>_from_<k>`). */
  readonly clusters: readonly string[];
  /**
   * Request headers per start step and number of usable steps: `headers[start][len - 1]`
   * (x-gateway-cluster plus the x-envoy-* retry headers).
   */
  readonly headers: readonly (readonly Readonly<Record<string, string>>[])[];
}

export interface CatalogOptions {
  /** A body `model` that is neither a model nor an alias: refuse (400) or route as if absent. */
  readonly onUnknownModel?: 'refuse' | 'route';
}

export interface Catalog {
  readonly models: ReadonlyMap<string, CatalogModel>;
  /** Alias or model name → model. */
  readonly byName: ReadonlyMap<string, CatalogModel>;
  readonly routes: readonly CompiledRoute[];
  readonly routeByName: ReadonlyMap<string, CompiledRoute>;
  /** Every step's cooldown key, for one cooldown lookup per request. */
  readonly cooldownKeys: readonly string[];
  readonly onUnknownModel: 'refuse' | 'route';
}

/** Name of route `i` (its `name`, else `route-<i>`). */
export function routeName(route: { name?: string | undefined }, i: number): string {
  return route.name ?? `route-${i}`;
}

/** Builds the routing catalog of a validated config. */
export function buildCatalog(config: GatewayConfig, options: CatalogOptions = {}): Catalog {
  const models = new Map<string, CatalogModel>();
  const byName = new Map<string, CatalogModel>();
  for (const [name, m] of Object.entries(config.models)) {
    const provider = config.providers[m.provider]!;
    const model: CatalogModel = {
      name,
      provider: m.provider,
      api: provider.api,
      upstreamName: m.upstreamName ?? name,
      ...(m.contextWindow !== undefined ? { contextWindow: m.contextWindow } : {}),
      capabilities: m.capabilities,
      ...(m.costTier !== undefined ? { costTier: m.costTier } : {}),
    };
    models.set(name, model);
    byName.set(name, model);
  }
  for (const [name, m] of Object.entries(config.models)) for (const a of m.aliases) byName.set(a, models.get(name)!);

  const resolveAll = (names: readonly string[] | undefined): Set<string> | undefined =>
    names ? new Set(names.map((n) => byName.get(n)?.name ?? n)) : undefined;

  const cooldownKeys = new Set<string>();
  const routes: CompiledRoute[] = config.routes.map((r, index) => {
    const name = routeName(r, index);
    const steps: ChainStep[] = [r.model, ...r.fallback].map((n, i) => {
      const m = byName.get(n)!;
      const p = config.providers[m.provider]!;
      const step: ChainStep = {
        index: i,
        model: m.name,
        provider: m.provider,
        api: m.api,
        upstreamName: m.upstreamName,
        cluster: p.cluster,
        host: p.host ?? defaultProviderHosts[p.api],
        port: p.port ?? 443,
        cooldownKey: `${m.provider}/${m.name}`,
        ...(m.contextWindow !== undefined ? { contextWindow: m.contextWindow } : {}),
        capabilities: m.capabilities,
      };
      cooldownKeys.add(step.cooldownKey);
      return step;
    });
    const mt = r.match;
    const match: CompiledMatch = {
      ...(mt.caller ? { caller: compileCallerPatterns(mt.caller) } : {}),
      ...(mt.preference ? { preference: resolveAll(mt.preference)! } : {}),
      ...(mt.model ? { model: resolveAll(mt.model)! } : {}),
      ...(mt.costTier ? { costTier: new Set(mt.costTier) } : {}),
      ...(mt.complexity?.min !== undefined ? { complexityMin: mt.complexity.min } : {}),
      ...(mt.complexity?.max !== undefined ? { complexityMax: mt.complexity.max } : {}),
      withinLatency: mt.withinLatency === true,
      ...(mt.budgetUsedAbove !== undefined ? { budgetUsedAbove: mt.budgetUsedAbove } : {}),
      isDefault: Object.keys(mt).length === 0,
    };
    const retry = envoyRetryPolicy(r.retryOn, r.perTryTimeoutMs);
    // The default route's whole chain keeps the conventional name `llm_chain`
    // (docs/conventions.md): it is also the cluster Envoy uses when no route stage decided.
    const isLast = index === config.routes.length - 1;
    const clusters = steps.map((_, k) => (isLast && k === 0 ? DEFAULT_CHAIN_CLUSTER : chainClusterName(name, k)));
    const headers = steps.map((_, k) => steps.slice(k).map((__, j) => retryHeaders(clusters[k]!, retry, j + 1)));
    return { name, index, match, steps, retry, clusters, headers };
  });
  return {
    models,
    byName,
    routes,
    routeByName: new Map(routes.map((r) => [r.name, r])),
    cooldownKeys: [...cooldownKeys],
    onUnknownModel: options.onUnknownModel ?? 'refuse',
  };
}
