/**
 * @module routing/services
 * The routing state that outlives a config reload and is shared by the `route` stage (reads
 * cooldowns, feeds and reads latency) and the attempt stage (cools a step that failed): one
 * cooldown store and one latency average per process, through `deps.services.shared`, so both
 * stages of a generation, and the next generation with the same settings, use the same ones.
 */
import type { Redis } from 'ioredis';
import { lazyRequire } from '../lazyRequire.js';

const ioredis = lazyRequire<typeof import('ioredis')>('ioredis');
import type { Services } from '../pipeline/services.js';
import { MemoryCooldownStore, type CooldownPolicy, type CooldownStore } from './cooldown.js';
import { LatencyEwma } from './latency.js';
import { routingOptionsSchema, type RoutingOptions } from './options.js';
import { RedisCooldownStore } from './redisCooldown.js';

export type CooldownOptions = RoutingOptions['cooldown'];

/** The route stage's defaults, for an attempt stage running without one. */
export const defaultRoutingOptions: RoutingOptions = routingOptionsSchema.parse({});

/** How long failures cool a step, from the options. */
export function cooldownPolicyOf(c: CooldownOptions): CooldownPolicy {
  return { rateLimitedMs: c.rateLimitedMs, serverErrorMs: c.serverErrorMs, maxMs: c.maxMs };
}

/** A Redis client that fails fast: routing must never wait long on shared state. */
function cooldownClient(url: string): Redis {
  const client = new (ioredis().Redis)(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 50,
    connectTimeout: 1000,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  // Failures surface in the calls (which fall back to "nothing cooled"); an unhandled 'error'
  // event would end the process.
  client.on('error', () => undefined);
  return client;
}

/** The process's cooldown store for these settings (memory, or Redis shared by replicas). */
export function sharedCooldownStore(services: Services, c: CooldownOptions): CooldownStore {
  const key = { store: c.store, redisUrl: c.redisUrl ?? null, cacheMs: c.cacheMs };
  return services.shared<CooldownStore>(
    'routing.cooldown',
    key,
    () => (c.store === 'redis' && c.redisUrl ? new RedisCooldownStore(cooldownClient(c.redisUrl), { cacheMs: c.cacheMs, ownsClient: true }) : new MemoryCooldownStore()),
    (s) => s.close(),
  );
}

/** The process's per-model latency average (per replica, learned from its own traffic). */
export function sharedLatency(services: Services, alpha: number): LatencyEwma {
  return services.shared('routing.latency', { alpha }, () => new LatencyEwma(alpha), () => undefined);
}

/**
 * The `route` entry's options in a config's stage list (the attempt stage cools steps with the
 * same settings), or the defaults when there is none or it does not parse.
 */
export function routeEntryOptions(stages: readonly unknown[] | undefined): RoutingOptions {
  for (const e of stages ?? []) {
    if (e === 'route') return defaultRoutingOptions;
    if (e !== null && typeof e === 'object' && (e as { name?: unknown }).name === 'route') {
      const { name: _n, failure: _f, timeoutMs: _t, ...options } = e as Record<string, unknown>;
      const parsed = routingOptionsSchema.safeParse(options);
      return parsed.success ? parsed.data : defaultRoutingOptions;
    }
  }
  return defaultRoutingOptions;
}
