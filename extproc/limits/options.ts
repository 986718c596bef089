/**
 * @module limits/options
 * Options of the `rate-limit` stage, validated with errors that name the key, and the
 * cross-check against the model catalog (unknown models, budgets without a price).
 *
 * ```yaml
 * - name: rate-limit
 *   backend: redis                 # or memory (the default: one replica)
 *   redis: { url: "${REDIS_URL}", timeoutMs: 50, failure: open }
 *   defaultOutputTokens: 4096      # reserved when a request sets no max_tokens
 *   limits:
 *     - { scope: caller, requestsPerMinute: 10, usdPerDay: 5 }
 *     - { scope: caller-model, model: gpt-4o, outputTokensPerMinute: 20000 }
 *     - { scope: model, model: claude-opus-4, inputTokensPerMinute: 400000, concurrentStreams: 50 }
 *     - { scope: route, route: default-chain, requestsPerMinute: 1000 }
 * ```
 * Scopes: `caller` (each caller), `caller-model` (each caller × model), `route` (each route),
 * `model` (all callers together: the provider's own quota). `model` / `route` narrow a limit to
 * one model / route; without them the limit applies to each model / route separately.
 */
import { z } from 'zod';
import { formatPath } from '../config/path.js';
import { resolvePrice, usdPerMTokToMicros } from '../pricing/price.js';
import { DEFAULT_ESTIMATION_FACTORS } from '../tokens/encodings.js';
import type { EstimationFactors } from '../tokens/encodings.js';
import type { PricedModel } from '../pricing/price.js';

const count = z.number().int().nonnegative();
const usd = z
  .number()
  .nonnegative()
  .refine((v) => /^\d+(\.\d{1,6})?$/.test(String(v)), { message: 'at most 6 decimals (micro-dollars)' });

/** Limit kinds a rule can set. */
export const limitMetrics = [
  'requestsPerMinute',
  'inputTokensPerMinute',
  'outputTokensPerMinute',
  'concurrentStreams',
  'usdPerDay',
  'usdPerMonth',
] as const;
export type LimitMetric = (typeof limitMetrics)[number];

export const limitScopes = ['caller', 'caller-model', 'route', 'model'] as const;
export type LimitScope = (typeof limitScopes)[number];

const limitSchema = z
  .object({
    scope: z.enum(limitScopes),
    /** Only requests served by this model (catalog name). */
    model: z.string().min(1).optional(),
    /** Only requests on this route (route name). */
    route: z.string().min(1).optional(),
    requestsPerMinute: count.optional(),
    inputTokensPerMinute: count.optional(),
    outputTokensPerMinute: count.optional(),
    concurrentStreams: count.optional(),
    usdPerDay: usd.optional(),
    usdPerMonth: usd.optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    if (!limitMetrics.some((m) => rule[m] !== undefined)) {
      ctx.addIssue({ code: 'custom', message: `sets no limit (one of ${limitMetrics.join(', ')})` });
    }
    if (rule.scope === 'caller' && rule.model !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['model'], message: 'scope "caller" counts all models; use scope "caller-model" for one model' });
    }
  });

const redisSchema = z
  .object({
    /** `redis://host:port/db` (use ${REDIS_URL}). */
    url: z.string().min(1),
    /** Prefix of every key the limiter writes. */
    keyPrefix: z.string().min(1).default('llmgw:rl'),
    /** Longest a request waits on Redis before the failure policy applies. */
    timeoutMs: z.number().int().positive().default(50),
    /** Redis unreachable: `open` (a local in-memory limiter decides) or `closed` (deny, 429). */
    failure: z.enum(['open', 'closed']).default('open'),
    /** A concurrency slot expires this long after it was taken unless released (a crashed replica's slots). */
    leaseMs: z.number().int().positive().default(15 * 60_000),
  })
  .strict();

/** Options of the `rate-limit` stage. */
export const rateLimitOptionsSchema = z
  .object({
    name: z.literal('rate-limit').optional(),
    backend: z.enum(['memory', 'redis']).default('memory'),
    redis: redisSchema.optional(),
    /** Output tokens reserved when the request sets no maximum. */
    defaultOutputTokens: count.default(4096),
    /** `retry-after` for a full concurrency limit (it has no window to wait for). */
    concurrencyRetryMs: z.number().int().positive().default(1000),
    /** Token estimate: UTF-8 bytes per token for the reservation bound (1 = strict). */
    bytesPerToken: z.number().positive().default(1),
    /** Calibration factors for families without a public tokenizer (tokens/encoding/DEFAULT_ESTIMATION_FACTORS). */
    estimationFactors: z
      .object({ anthropic: z.number().positive(), mistral: z.number().positive(), unknown: z.number().positive() })
      .partial()
      .strict()
      .default({}),
    limits: z.array(limitSchema).default([]),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.backend === 'redis' && o.redis === undefined) {
      ctx.addIssue({ code: 'custom', path: ['redis'], message: 'required when backend is "redis"' });
    }
  });

export type RateLimitOptions = z.output<typeof rateLimitOptionsSchema>;
export type LimitRuleOptions = RateLimitOptions['limits'][number];

function describeIssue(basePath: readonly PropertyKey[], issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `${formatPath([...basePath, ...issue.path, k])}: unknown key`);
  return [`${formatPath([...basePath, ...issue.path])}: ${issue.message}`];
}

/**
 * Validates stage options. Problems name the key under `basePath`
 * (e.g. `['pipeline', 'stages', 3]` → `pipeline.stages[3].limits[1].requestsPerMinute: …`).
 */
export function parseRateLimitOptions(
  raw: unknown,
  basePath: readonly PropertyKey[] = [],
): { ok: true; options: RateLimitOptions } | { ok: false; problems: string[] } {
  const r = rateLimitOptionsSchema.safeParse(raw);
  if (r.success) return { ok: true, options: r.data };
  return { ok: false, problems: r.error.issues.flatMap((i) => describeIssue(basePath, i)) };
}

/** The catalog as far as limits care (structurally the gateway config). */
export interface LimitCatalog {
  readonly models: Readonly<Record<string, PricedModel>>;
  readonly routes?: readonly { readonly name?: string | undefined }[];
}

/** A cross-check problem: the key path under the stage entry and what is wrong there. */
export interface LimitConfigProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

/**
 * Cross-checks options against the catalog: a limit's `model` must exist, a `route` must be a
 * named route, and every model a USD budget can meet must have a price (config or built-in table).
 * Returns problems with paths relative to the stage entry (what `StageFactory.check` returns).
 */
export function limitConfigProblems(options: RateLimitOptions, catalog: LimitCatalog): LimitConfigProblem[] {
  const problems: LimitConfigProblem[] = [];
  const routeNames = new Set((catalog.routes ?? []).map((r) => r.name).filter((n): n is string => n !== undefined));
  options.limits.forEach((rule, i) => {
    if (rule.model !== undefined && !(rule.model in catalog.models)) {
      problems.push({ path: ['limits', i, 'model'], message: `unknown model "${rule.model}"` });
    }
    if (rule.route !== undefined && catalog.routes !== undefined && !routeNames.has(rule.route)) {
      problems.push({ path: ['limits', i, 'route'], message: `unknown route "${rule.route}"` });
    }
    for (const metric of ['usdPerDay', 'usdPerMonth'] as const) {
      if (rule[metric] === undefined) continue;
      const models = rule.model !== undefined ? (rule.model in catalog.models ? [rule.model] : []) : Object.keys(catalog.models);
      for (const m of models) {
        if (!resolvePrice(m, catalog.models)) {
          problems.push({ path: ['limits', i, metric], message: `budget needs a price for model "${m}" (set models.${m}.pricing)` });
        }
      }
    }
  });
  return problems;
}

/**
 * `limitConfigProblems` as `key: message` lines with full paths (`basePath` as in
 * `parseRateLimitOptions`); empty when fine.
 */
export function checkLimitConfig(options: RateLimitOptions, catalog: LimitCatalog, basePath: readonly PropertyKey[] = []): string[] {
  return limitConfigProblems(options, catalog).map((p) => `${formatPath([...basePath, ...p.path])}: ${p.message}`);
}

/** A USD budget in integer micro-dollars. */
export function usdToMicros(v: number): number {
  return usdPerMTokToMicros(v);
}

/** The estimation factors the options set, over the defaults. */
export function estimationFactorsOf(options: Pick<RateLimitOptions, 'estimationFactors'>): EstimationFactors {
  return { ...DEFAULT_ESTIMATION_FACTORS, ...options.estimationFactors };
}
