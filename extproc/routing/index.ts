/**
 * @module routing
 * Model routing: the catalog, rules and fallback chains of the config, the decision, and how
 * Envoy carries the chain out. Plain modules: the `route` and attempt stages call them.
 */
export { buildCatalog, routeName, type Catalog, type CatalogModel, type CatalogOptions, type ChainStep, type CompiledRoute, type CompiledMatch, type CostTier, type ProviderApi } from './catalog.js';
export { decideRoute, MODEL_PREFERENCE_HEADER, MAX_LATENCY_HEADER, type RouteContext, type RouteDecision, type RouteRefusal, type RouteRequest } from './decide.js';
export { summarizePrompt, complexityScore, type PromptSummary } from './complexity.js';
export { LatencyEwma, type LatencyView } from './latency.js';
export { MemoryCooldownStore, cooldownUntil, parseRetryAfter, defaultCooldownPolicy, type CooldownStore, type CooldownPolicy } from './cooldown.js';
export { RedisCooldownStore, type RedisCooldownOptions } from './redisCooldown.js';
export { clusterFor, retryHeadersFor, stepFromUpstream, type AttemptStep } from './steps.js';
export {
  chainClusterName,
  envoyRetryPolicy,
  CLUSTER_HEADER,
  METADATA_NAMESPACE,
  UPSTREAM_HOST_METADATA_ATTRIBUTE,
  type EnvoyRetryPolicy,
} from './envoyChain.js';
export { routingOptionsSchema, type RoutingOptions } from './options.js';
export { compileCallerPatterns } from './glob.js';
