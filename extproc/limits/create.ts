/**
 * @module limits/create
 * Builds the limiter the stage options ask for: in memory, or Redis behind the failover policy.
 */
import type { Logger } from '../telemetry/logger.js';
import { FailoverLimiter } from './failover.js';
import { MemoryLimiter } from './memory.js';
import type { RateLimitOptions } from './options.js';
import { RedisLimiter } from './redis.js';
import type { Limiter } from './types.js';

export interface CreateLimiterDeps {
  readonly logger?: Logger | undefined;
  readonly clock?: () => number;
}

/** A limiter for validated stage options. Close it when the stage's service is disposed. */
export function createLimiter(options: RateLimitOptions, deps: CreateLimiterDeps = {}): Limiter {
  const leaseMs = options.redis?.leaseMs ?? 15 * 60_000;
  const local = new MemoryLimiter({ limits: options.limits, concurrencyRetryMs: options.concurrencyRetryMs, leaseMs, ...(deps.clock ? { clock: deps.clock } : {}) });
  if (options.backend === 'memory' || !options.redis) return local;
  const r = options.redis;
  const primary = new RedisLimiter({
    limits: options.limits,
    redis: r.url,
    keyPrefix: r.keyPrefix,
    timeoutMs: r.timeoutMs,
    leaseMs: r.leaseMs,
    concurrencyRetryMs: options.concurrencyRetryMs,
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  // The injected clock places requests in limit windows; the failover's probe interval is about
  // how long Redis has been down, so it keeps real time (a frozen test clock would never probe).
  return new FailoverLimiter(primary, local, { failure: r.failure, logger: deps.logger });
}
