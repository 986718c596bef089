/**
 * @module stages/cacheService
 * The semantic cache's shared service: the store (embedded PGlite in a worker, or Postgres), its
 * migrations, the SemanticCache over it and the embedder. Created once per settings through
 * `deps.services.shared`, so it survives config reloads, and closed on shutdown (closing flushes
 * the queued writes, then stops the store).
 *
 * Opening is asynchronous (a first embedded start runs initdb: seconds) while pipelines are
 * built synchronously, so the service starts in the background: until it is ready, lookups miss
 * and stores wait for it (off the request path). A store that cannot be opened (Postgres down, a
 * data directory locked by the instance being replaced on reload) is retried with backoff; the
 * gateway answers from the providers meanwhile.
 */
import { HttpEmbedder, LexicalEmbedder, SemanticCache, type Embedder } from '../cache/index.js';
import { openStore, type Store, type StoreConfig } from '../store/index.js';
import type { Logger } from '../telemetry/logger.js';
import { describeError } from '../telemetry/logger.js';
import { defaultCacheDir, type SemanticCacheOptions } from './cacheOptions.js';

/** What the service counts (exposed for tests, benches and operators; no request content). */
export interface CacheCounters {
  lookups: number;
  hits: number;
  misses: number;
  bypasses: number;
  /** Lookups that found the store not ready (opening, or down at start). */
  notReady: number;
  storeErrors: number;
  embeddingErrors: number;
  /** Lookups cut by the lookup budget. */
  overBudget: number;
  /** Entries handed to the write queue. */
  stored: number;
  /** Entries the queue refused (full). */
  dropped: number;
  /** Misses whose answer was not stored, by reason. */
  notStored: Record<string, number>;
}

/** The settings that make a service (what `services.shared` compares). */
export interface CacheServiceConfig {
  store: StoreConfig;
  embeddings: SemanticCacheOptions['embeddings'];
  maxEntriesPerScope: number;
  candidates: number;
  maxPendingWrites: number;
}

export function cacheServiceConfig(options: SemanticCacheOptions): CacheServiceConfig {
  const dims = options.embeddings.dimensions;
  const s = options.store;
  const store: StoreConfig =
    s.kind === 'embedded'
      ? { kind: 'embedded', dataDir: s.dataDir ?? defaultCacheDir(), vectorDimensions: dims, ...(s.poolSize ? { poolSize: s.poolSize } : {}) }
      : { kind: 'postgres', url: s.url, vectorDimensions: dims, ...(s.poolSize ? { poolSize: s.poolSize } : {}) };
  return {
    store,
    embeddings: options.embeddings,
    maxEntriesPerScope: options.maxEntriesPerScope,
    candidates: options.candidates,
    maxPendingWrites: options.maxPendingWrites,
  };
}

export function embedderOf(e: SemanticCacheOptions['embeddings']): Embedder {
  if (e.kind === 'local') return new LexicalEmbedder(e.dimensions);
  return new HttpEmbedder({
    url: e.url,
    model: e.model,
    dimensions: e.dimensions,
    timeoutMs: e.timeoutMs,
    sendDimensions: e.sendDimensions,
    ...(e.apiKey ? { apiKey: e.apiKey } : {}),
  });
}

/** Live services of this process (tests and benches flush and inspect them). */
const live = new Set<CacheService>();

/** The cache services currently open in this process. */
export function activeCacheServices(): readonly CacheService[] {
  return [...live];
}

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** At most one warning per kind of failure in this window (the count of the rest is logged). */
const WARN_EVERY_MS = 10_000;

export class CacheService {
  readonly embedder: Embedder;
  readonly counters: CacheCounters = {
    lookups: 0,
    hits: 0,
    misses: 0,
    bypasses: 0,
    notReady: 0,
    storeErrors: 0,
    embeddingErrors: 0,
    overBudget: 0,
    stored: 0,
    dropped: 0,
    notStored: {},
  };
  private cacheValue: SemanticCache | undefined;
  private storeValue: Store | undefined;
  private opening: Promise<SemanticCache | undefined> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_FIRST_MS;
  private closed = false;
  private readonly warned = new Map<string, { at: number; suppressed: number }>();
  /** Resolves when the cache is ready, or undefined once the service closed. */
  private readyWaiters: ((c: SemanticCache | undefined) => void)[] = [];

  constructor(
    readonly config: CacheServiceConfig,
    private readonly log: Logger,
  ) {
    this.embedder = embedderOf(config.embeddings);
    live.add(this);
    this.open();
  }

  /** The cache when ready, else undefined (a lookup then misses). */
  get cache(): SemanticCache | undefined {
    return this.cacheValue;
  }

  get store(): Store | undefined {
    return this.storeValue;
  }

  /** Waits for readiness, at most `ms`; undefined when not ready by then or closed. */
  whenReady(ms: number): Promise<SemanticCache | undefined> {
    if (this.cacheValue || this.closed) return Promise.resolve(this.cacheValue);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
        resolve(undefined);
      }, ms);
      timer.unref();
      const done = (c: SemanticCache | undefined): void => {
        clearTimeout(timer);
        resolve(c);
      };
      this.readyWaiters.push(done);
    });
  }

  /** Counts and logs a failure, at most one line per kind per window. Never logs request data. */
  failure(kind: 'store' | 'embedding' | 'budget' | 'write' | 'open', err: unknown, now = Date.now()): void {
    if (kind === 'store') this.counters.storeErrors++;
    else if (kind === 'embedding') this.counters.embeddingErrors++;
    else if (kind === 'budget') this.counters.overBudget++;
    const w = this.warned.get(kind);
    if (w && now - w.at < WARN_EVERY_MS) {
      w.suppressed++;
      return;
    }
    this.log.warn('semantic cache failed open', { failure: kind, error: err === undefined ? null : describeError(err), suppressed: w?.suppressed ?? 0 });
    this.warned.set(kind, { at: now, suppressed: 0 });
  }

  notStored(reason: string): void {
    this.counters.notStored[reason] = (this.counters.notStored[reason] ?? 0) + 1;
  }

  /** Writes everything queued so far (tests, benches; shutdown does it through close). */
  async flush(): Promise<void> {
    await this.cacheValue?.flush();
  }

  /** Stops retrying, flushes queued writes, closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    clearTimeout(this.retryTimer);
    for (const w of this.readyWaiters.splice(0)) w(undefined);
    await this.opening?.catch(() => undefined);
    const cache = this.cacheValue;
    this.cacheValue = undefined;
    try {
      await cache?.close();
    } finally {
      await this.storeValue?.close();
    }
  }

  private open(): void {
    const { store: storeConfig } = this.config;
    this.opening = (async (): Promise<SemanticCache | undefined> => {
      let store: Store | undefined;
      try {
        store = await openStore(storeConfig, { onEvent: (e) => this.log.warn('semantic cache store event', { event: e.event, message: e.message ?? null }) });
        await store.migrate();
      } catch (err) {
        await store?.close().catch(() => undefined);
        if (this.closed) return undefined;
        this.log.error('semantic cache store unavailable; requests go to the providers', {
          kind: storeConfig.kind,
          error: describeError(err),
          retry_ms: this.retryMs,
        });
        this.retryTimer = setTimeout(() => this.open(), this.retryMs);
        this.retryTimer.unref();
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
        return undefined;
      }
      if (this.closed) {
        await store.close();
        return undefined;
      }
      const cache = new SemanticCache({
        store,
        embedderId: this.embedder.id,
        maxEntriesPerScope: this.config.maxEntriesPerScope,
        candidates: this.config.candidates,
        maxPendingWrites: this.config.maxPendingWrites,
        onError: (what, err) => this.failure(what === 'write' ? 'write' : 'store', err),
        // The embedded store's data directory is locked to this gateway: it is the only writer.
        singleWriter: storeConfig.kind === 'embedded',
      });
      this.storeValue = store;
      this.cacheValue = cache;
      this.log.info('semantic cache ready', { kind: storeConfig.kind, embedder: this.embedder.id });
      for (const w of this.readyWaiters.splice(0)) w(cache);
      return cache;
    })();
  }
}
