/**
 * @module routing/options
 * Options of the `route` stage's entry in `pipeline.stages` (the catalog and rules live in the
 * config's `models` and `routes`).
 */
import { z } from 'zod';

export const routingOptionsSchema = z
  .object({
    /** A body `model` the catalog does not know: `refuse` (400 naming it) or `route` as if absent. */
    onUnknownModel: z.enum(['refuse', 'route']).default('refuse'),
    /** Weight of the newest latency sample in the per-model moving average. */
    latencyAlpha: z.number().gt(0).max(1).default(0.2),
    cooldown: z
      .object({
        /** Cooling after a 429 without a usable retry-after. */
        rateLimitedMs: z.number().int().nonnegative().default(10_000),
        /** Cooling after a 5xx or 529. */
        serverErrorMs: z.number().int().nonnegative().default(5_000),
        /** Upper bound, also on retry-after. */
        maxMs: z.number().int().positive().default(300_000),
        /** `memory` (one replica) or `redis` (shared; needs `redisUrl`). */
        store: z.enum(['memory', 'redis']).default('memory'),
        redisUrl: z.string().min(1).optional(),
        /** Redis reads served from a snapshot this young (ms). */
        cacheMs: z.number().int().nonnegative().default(250),
      })
      .strict()
      .refine((c) => c.store !== 'redis' || c.redisUrl !== undefined, { message: 'store redis needs redisUrl', path: ['redisUrl'] })
      .default({ rateLimitedMs: 10_000, serverErrorMs: 5_000, maxMs: 300_000, store: 'memory', cacheMs: 250 }),
  })
  .strict();

export type RoutingOptions = z.output<typeof routingOptionsSchema>;
