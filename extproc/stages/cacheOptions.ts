/**
 * @module stages/cacheOptions
 * Options of the `semantic-cache` stage (its `pipeline.stages` entry), validated with zod so an
 * error names its key. Numbers accept strings because `${ENV:-default}` substitutes text.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_THRESHOLD } from '../cache/semanticCache.js';

/** Where the embedded store lives when `dataDir` is not set: `$CACHE_DIR`, else ./data/cache. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const fromEnv = env['CACHE_DIR'];
  return fromEnv && fromEnv.length > 0 ? fromEnv : join(cwd, 'data', 'cache');
}

const positiveInt = z.coerce.number().int().positive();

const storeSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('embedded'),
      /** PGlite data directory (one gateway per directory). Default `$CACHE_DIR` or ./data/cache. */
      dataDir: z.string().min(1).optional(),
      poolSize: positiveInt.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('postgres'),
      /** postgres://… with the pgvector extension available (use ${ENV}: it holds a password). */
      url: z.string().min(1),
      poolSize: positiveInt.optional(),
    })
    .strict(),
]);

const embeddingsSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('local'),
      /** Vector size of the lexical embedder. */
      dimensions: z.coerce.number().int().min(16).max(4096).default(384),
    })
    .strict(),
  z
    .object({
      kind: z.literal('http'),
      /** Base URL of an OpenAI-compatible API, e.g. https://api.openai.com/v1 (`/embeddings` appended). */
      url: z.string().url(),
      model: z.string().min(1),
      dimensions: z.coerce.number().int().min(16).max(4096),
      /** Bearer token (use ${ENV}). Empty: none sent. */
      apiKey: z.string().optional(),
      /** Per call. The lookup budget caps it on the request path; stores (off the path) use it whole. */
      timeoutMs: positiveInt.default(2_000),
      /** Send `dimensions` (models that cannot shorten vectors reject it). */
      sendDimensions: z.boolean().default(true),
    })
    .strict(),
]);

const threshold = z.coerce.number().gt(0, 'must be above 0').max(1, 'must be at most 1');

export const semanticCacheOptionsSchema = z
  .object({
    store: storeSchema.default({ kind: 'embedded' }),
    embeddings: embeddingsSchema.default({ kind: 'local', dimensions: 384 }),
    /**
     * Cosine similarity a near match must reach before it is verified (numbers, negations,
     * entities, quotes). Strict by default; a request may tighten it with
     * `x-gateway-cache-threshold`, never loosen it.
     */
    threshold: threshold.default(DEFAULT_THRESHOLD),
    /** Per-route thresholds (route name → threshold), over `threshold`. */
    routeThresholds: z.record(z.string().min(1), threshold).default({}),
    /** Lifetime of an entry. Default one day. */
    ttlSeconds: positiveInt.default(86_400),
    /** Entries kept per scope; beyond it the least recently hit are evicted. */
    maxEntriesPerScope: positiveInt.default(1_000),
    /** Longest the lookup (embedding included) may take on the request path; past it: a miss. */
    lookupBudgetMs: positiveInt.default(50),
    /**
     * Answers to requests with a `temperature` above this are not stored (and not looked up: the
     * temperature is part of the scope, so nothing could match). The provider default (no
     * `temperature`) counts as 1. Set 2 to cache every temperature.
     */
    maxTemperature: z.coerce.number().min(0).max(2).default(1),
    /** Store answers cut by the token limit (`length` / `max_tokens`). */
    storeTruncated: z.boolean().default(false),
    /** Longest answer stored, in characters. */
    maxAnswerChars: positiveInt.default(256 * 1024),
    /** Candidates a similarity search verifies, nearest first. */
    candidates: z.coerce.number().int().min(1).max(32).default(4),
    /** Pending writes held in memory while the store is slow; beyond it entries are dropped (counted). */
    maxPendingWrites: positiveInt.default(10_000),
  })
  .strict();

export type SemanticCacheOptions = z.output<typeof semanticCacheOptionsSchema>;
