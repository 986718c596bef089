/**
 * @module limits
 * Rate limits and budgets: options, the limiter contract, in-memory and Redis backends,
 * failover, and rate-limit headers. No pipeline or Envoy types: the `rate-limit` stage wires it.
 */
export { rateLimitOptionsSchema, parseRateLimitOptions, checkLimitConfig, limitConfigProblems, estimationFactorsOf, limitMetrics, limitScopes } from './options.js';
export type { RateLimitOptions, LimitRuleOptions, LimitMetric, LimitScope, LimitCatalog, LimitConfigProblem } from './options.js';
export type {
  Limiter,
  LimitKeys,
  LimitAmounts,
  ReserveRequest,
  Reservation,
  Decision,
  LimitHit,
  RateLimitInfo,
  RateLimitFigure,
  BudgetUsage,
  BudgetUse,
} from './types.js';
export { MemoryLimiter } from './memory.js';
export { RedisLimiter, createFailFastClient } from './redis.js';
export { FailoverLimiter } from './failover.js';
export type { FailoverStats } from './failover.js';
export { createLimiter } from './create.js';
export { rateLimitHeaders, setRateLimitHeaders, decisionHeaders, formatReset, type HeaderSink } from './headers.js';
