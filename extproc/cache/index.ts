/**
 * @module cache
 * Semantic cache domain modules: embedders, scope keys, hit verification, the cache itself.
 */
export { EmbedderError, cosineSimilarity, type Embedder, type EmbedderFailure } from './embedder.js';
export { LexicalEmbedder, lexicalVector, normaliseText, LEXICAL_EMBEDDER_VERSION } from './lexicalEmbedder.js';
export { HttpEmbedder, type HttpEmbedderConfig } from './httpEmbedder.js';
export {
  scopeKey,
  exactHash,
  canonicalJson,
  deriveCacheKeys,
  type ScopeParts,
  type Dialect,
  type CacheKeys,
  type DeriveResult,
} from './scope.js';
export { verifyMatch, extractNumbers, extractNegations, extractEntities, extractQuotes, type VerifyResult, type VerifyOptions } from './verify.js';
export {
  SemanticCache,
  CacheStoreError,
  DEFAULT_THRESHOLD,
  type SemanticCacheOptions,
  type LookupQuery,
  type LookupResult,
  type CacheHit,
  type CacheMiss,
  type MissReason,
  type CacheEntry,
  type SemanticCacheStats,
  type VectorSearch,
} from './semanticCache.js';
export { WriteQueue, type WriteQueueStats } from './writeQueue.js';
