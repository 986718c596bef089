/**
 * @module cache/semanticCache
 * The semantic cache over the store's `semantic_cache` table.
 *
 * Lookup: the exact hash first (one indexed row); only on a miss the newest turn is embedded
 * and the nearest entries *of the same scope* are fetched (`WHERE scope_key = $1`: the scope is
 * a hard partition in the query, so another tenant's row can never be a candidate). A candidate
 * must reach the threshold and pass `verifyMatch`. Writes (new entries, hit counts) go through
 * bounded queues drained in batches off the caller's path; a periodic purge deletes expired
 * rows, and a maximum entry count per scope evicts the least recently hit.
 *
 * Failures surface as exceptions: CacheStoreError (SQL / connection) from `lookup`, or the
 * embedder's EmbedderError from the lazy embedding. The stage turns both into a miss.
 */
import type { Store } from '../store/index.js';
import { CACHE_TABLE, toVectorSql } from '../store/index.js';
import { verifyMatch, type VerifyResult } from './verify.js';
import { WriteQueue, type WriteQueueStats } from './writeQueue.js';

/**
 * Cosine similarity a candidate must reach before it is verified. With the lexical embedder on
 * the quality set (bench/cache.ts): similarity alone gives 7/38 false hits at 0.9 (13 at 0.85),
 * verification brings both to 0; 0.9 keeps 15/20 must-hit pairs (0.85: 19/20). Strict on
 * purpose: a request may tighten it, never loosen it.
 */
export const DEFAULT_THRESHOLD = 0.9;

/**
 * 'exact' (default): distances computed on the scope's rows (btree on scope_key): recall 1, cost
 * grows with the scope's size, which `maxEntriesPerScope` bounds. Measured (bench/cache.ts,
 * 5,000 rows in 200 uneven scopes): exact recall 1.00 at p50 1.2 ms; HNSW 0.90 with or without
 * iterative scan at p50 1.0-1.3 ms. 'hnsw': the HNSW index with pgvector's iterative scan, for
 * scopes far larger than the default maximum on native Postgres.
 */
export type VectorSearch = 'exact' | 'hnsw';

export interface SemanticCacheOptions {
  store: Store;
  /** `Embedder.id` of the vectors this cache stores and compares. */
  embedderId: string;
  /** Default time to live of a new entry. Default 24 h. */
  ttlMs?: number;
  /** Per scope; the least recently hit entries beyond it are evicted. Default 1,000. */
  maxEntriesPerScope?: number;
  vectorSearch?: VectorSearch;
  /** Candidates fetched per vector search (verified in order). Default 4. */
  candidates?: number;
  /** Bounded write queue. Default 10,000 pending, batches of 50. */
  maxPendingWrites?: number;
  writeBatchSize?: number;
  /** Purge expired rows this often; 0 disables the timer. Default 10 min. */
  purgeIntervalMs?: number;
  /** Passed to verifyMatch; see VerifyOptions.contentWords (default true). */
  verifyContentWords?: boolean;
  /** Background failures (writes, purge), for the log and metrics. */
  onError?: (what: 'write' | 'hit' | 'purge' | 'evict', err: unknown) => void;
  /**
   * This process is the store's only writer (the embedded store: its data directory is locked to
   * one gateway). The cache then keeps, per scope, until when it holds a live entry, and answers
   * a lookup in a scope with none as a miss without any SQL. Never set it on a shared Postgres:
   * another replica's entries would be missed.
   */
  singleWriter?: boolean;
}

export interface LookupQuery {
  scopeKey: string;
  exactHash: string;
  /** Newest user turn (already PII-redacted): verified against a similar entry's prompt. */
  promptText: string;
  /** Called only when the exact lookup missed. */
  embedding?: () => Promise<Float32Array>;
  /** Minimum cosine similarity, 0..1. */
  threshold: number;
  /** Accept only entries younger than this (`cache-control: max-age`). */
  maxAgeMs?: number;
  /** Clock, ms since epoch. Default Date.now(). */
  now?: number;
}

export interface CacheHit {
  hit: true;
  match: 'exact' | 'similar';
  answer: unknown;
  model: string;
  similarity: number;
  entryId: string;
  ageMs: number;
}

export type MissReason = 'no-entry' | 'no-embedding' | 'below-threshold' | `verify-${Extract<VerifyResult, { ok: false }>['reason']}`;

export interface CacheMiss {
  hit: false;
  reason: MissReason;
  /** Best similarity seen in the scope, when a vector search ran and found a row. */
  bestSimilarity?: number;
}

export type LookupResult = CacheHit | CacheMiss;

export interface CacheEntry {
  scopeKey: string;
  exactHash: string;
  promptText: string;
  /** Omitted when embedding failed: the entry then only serves exact matches. */
  embedding?: Float32Array;
  /** The response in a neutral, JSON-serialisable form. */
  answer: unknown;
  model: string;
  ttlMs?: number;
  now?: number;
}

export interface SemanticCacheStats {
  entries: WriteQueueStats;
  hits: WriteQueueStats;
}

/** A SQL or connection failure during lookup. */
export class CacheStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CacheStoreError';
  }
}

interface Row {
  id: string;
  answer: unknown;
  model: string;
  prompt: string;
  created_at: Date;
  similarity: number | null;
}

interface PendingHit {
  id: string;
  at: number;
}

export class SemanticCache {
  private readonly t = CACHE_TABLE;
  private readonly ttlMs: number;
  private readonly maxPerScope: number;
  private readonly search: VectorSearch;
  private readonly k: number;
  private readonly entries: WriteQueue<CacheEntry>;
  private readonly hits: WriteQueue<PendingHit>;
  private purgeTimer: NodeJS.Timeout | undefined;
  /**
   * With `singleWriter`: scope → latest expiry of an entry written to it (ms), loaded from the
   * store at start, raised by every write. Deletions (purge, eviction) may leave it too high,
   * which only costs a query; it is never too low, since every write goes through this process.
   */
  private liveUntil: Map<string, number> | undefined;

  constructor(private readonly opts: SemanticCacheOptions) {
    this.ttlMs = opts.ttlMs ?? 24 * 3600_000;
    this.maxPerScope = opts.maxEntriesPerScope ?? 1_000;
    this.search = opts.vectorSearch ?? 'exact';
    this.k = opts.candidates ?? 4;
    const q = { maxPending: opts.maxPendingWrites ?? 10_000, batchSize: opts.writeBatchSize ?? 50 };
    this.entries = new WriteQueue((b) => this.writeEntries(b), { ...q, onError: (e) => opts.onError?.('write', e) });
    this.hits = new WriteQueue((b) => this.writeHits(b), { ...q, batchSize: 500, onError: (e) => opts.onError?.('hit', e) });
    if (this.search === 'hnsw') {
      // Iterative scan: keep walking the graph until enough rows of the scope were found,
      // instead of filtering ef_search candidates after the fact (which loses recall in small
      // scopes). Set per connection, as connections open.
      opts.store.pool.on('connect', (client) => {
        client.query('SET hnsw.iterative_scan = relaxed_order').catch(() => {});
      });
    }
    if (opts.singleWriter) this.loadLiveScopes();
    const every = opts.purgeIntervalMs ?? 600_000;
    if (every > 0) {
      this.purgeTimer = setInterval(() => {
        this.purgeExpired().catch((e: unknown) => opts.onError?.('purge', e));
      }, every);
      this.purgeTimer.unref();
    }
  }

  /**
   * True when this process knows, without asking the store, that `scopeKey` holds no live entry
   * at `now`: the store's only writer (embedded) never filled the scope or saw its entries
   * expire. False means "ask the store" (always, on a shared Postgres).
   */
  knownEmpty(scopeKey: string, now: number): boolean {
    return this.liveUntil !== undefined && (this.liveUntil.get(scopeKey) ?? 0) <= now;
  }

  async lookup(q: LookupQuery): Promise<LookupResult> {
    if (!(q.threshold > 0 && q.threshold <= 1)) throw new RangeError('threshold must be in (0, 1]');
    const now = q.now ?? Date.now();
    // A scope this (only) writer never filled, or whose entries all expired: nothing to find.
    if (this.knownEmpty(q.scopeKey, now)) return { hit: false, reason: 'no-entry' };
    const oldest = new Date(q.maxAgeMs === undefined ? 0 : now - q.maxAgeMs);
    // One statement answers both "is there an exact entry?" and "could a similar one exist?": a
    // scope with no live embedded entry cannot give a similar hit, so such a miss costs neither
    // the embedding nor the vector search.
    const exact = await this.query<Row & { candidates: boolean }>(
      'cache-exact',
      `SELECT e.id::text AS id, e.answer, e.model, e.prompt, e.created_at, 1::float8 AS similarity,
              EXISTS (SELECT 1 FROM ${this.t} c
                       WHERE c.scope_key = $1 AND c.embedder = $5 AND c.expires_at > $3 AND c.created_at >= $4 AND c.embedding IS NOT NULL) AS candidates
         FROM (SELECT 1) AS one
         LEFT JOIN ${this.t} e ON e.scope_key = $1 AND e.exact_hash = $2 AND e.expires_at > $3 AND e.created_at >= $4
        LIMIT 1`,
      [q.scopeKey, q.exactHash, new Date(now), oldest, this.opts.embedderId],
    );
    const row = exact[0];
    if (row && row.id !== null) return this.hit(row, 'exact', 1, now);
    if (!q.embedding || !row?.candidates) return { hit: false, reason: 'no-entry' };
    const vector = toVectorSql(await q.embedding());
    // 'exact' defeats the HNSW index on purpose ("+ 0"): the planner then reads the scope's rows
    // through the btree and sorts them by distance.
    const order = this.search === 'exact' ? `(embedding <=> $2::vector) + 0` : `embedding <=> $2::vector`;
    const rows = await this.query<Row>(
      `cache-similar-${this.search}-${this.k}`,
      `SELECT id::text AS id, answer, model, prompt, created_at, 1 - (embedding <=> $2::vector) AS similarity
         FROM ${this.t}
        WHERE scope_key = $1 AND embedder = $3 AND expires_at > $4 AND created_at >= $5 AND embedding IS NOT NULL
        ORDER BY ${order} LIMIT ${this.k}`,
      [q.scopeKey, vector, this.opts.embedderId, new Date(now), oldest],
    );
    if (rows.length === 0) return { hit: false, reason: 'no-entry' };
    const best = rows[0]!.similarity ?? 0;
    let reason: MissReason = 'below-threshold';
    for (const r of rows) {
      const sim = r.similarity ?? 0;
      if (sim < q.threshold) break;
      const v = verifyMatch(q.promptText, r.prompt, { contentWords: this.opts.verifyContentWords ?? true });
      if (v.ok) return this.hit(r, 'similar', sim, now);
      if (reason === 'below-threshold') reason = `verify-${v.reason}`;
    }
    return { hit: false, reason, bestSimilarity: best };
  }

  /** Queues an entry for writing. False when the queue was full and it was dropped. */
  store(entry: CacheEntry): boolean {
    return this.entries.push(entry);
  }

  /** Queues a hit (count and last-hit time, which eviction reads). `lookup` does this itself. */
  recordHit(entryId: string, at = Date.now()): boolean {
    return this.hits.push({ id: entryId, at });
  }

  /** Deletes expired entries; returns how many. Runs periodically on its own. */
  async purgeExpired(now = Date.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.opts.store.pool.query(
        `DELETE FROM ${this.t} WHERE id IN (SELECT id FROM ${this.t} WHERE expires_at <= $1 LIMIT 5000)`,
        [new Date(now)],
      );
      total += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < 5000) return total;
    }
  }

  /** Writes everything queued so far. */
  async flush(): Promise<void> {
    await this.entries.flush();
    await this.hits.flush();
  }

  stats(): SemanticCacheStats {
    return { entries: this.entries.stats(), hits: this.hits.stats() };
  }

  /** Stops the purge timer and writes what is queued. Does not close the store. */
  async close(): Promise<void> {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    await this.flush();
  }

  private hit(r: Row, match: 'exact' | 'similar', similarity: number, now: number): CacheHit {
    this.recordHit(r.id, now);
    return { hit: true, match, answer: r.answer, model: r.model, similarity, entryId: r.id, ageMs: Math.max(0, now - r.created_at.getTime()) };
  }

  /**
   * Unnamed statements on purpose: the embedded PGlite serves every pooled connection from one
   * backend session, so a named prepared statement made on one connection collides with the same
   * name prepared on another ("already exists"). `name` labels the query for errors only.
   */
  private async query<R extends object>(name: string, sql: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.opts.store.pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw new CacheStoreError(`cache store query ${name} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Loads every scope's latest expiry; until it is in, lookups ask the store. */
  private loadLiveScopes(): void {
    this.opts.store.pool
      .query<{ scope_key: string; until: Date }>(`SELECT scope_key, max(expires_at) AS until FROM ${this.t} WHERE expires_at > now() GROUP BY scope_key`)
      .then((r) => {
        const m = new Map<string, number>();
        for (const row of r.rows) m.set(row.scope_key, row.until.getTime());
        // Writes that landed while loading raised nothing yet: merge what they recorded.
        for (const [k, v] of this.pendingLive) m.set(k, Math.max(m.get(k) ?? 0, v));
        this.pendingLive.clear();
        this.liveUntil = m;
      })
      .catch((err: unknown) => this.opts.onError?.('purge', err)); // without the index, every lookup asks the store
  }

  /** Scope expiries written before the index was loaded. */
  private readonly pendingLive = new Map<string, number>();

  private noteLive(scope: string, until: number): void {
    const target = this.liveUntil ?? (this.opts.singleWriter ? this.pendingLive : undefined);
    if (target && (target.get(scope) ?? 0) < until) target.set(scope, until);
  }

  private async writeEntries(batch: CacheEntry[]): Promise<void> {
    // One row per key per statement (ON CONFLICT cannot touch a row twice); the last wins.
    const byKey = new Map<string, CacheEntry>();
    for (const e of batch) byKey.set(`${e.scopeKey}\u0000${e.exactHash}`, e);
    const values: string[] = [];
    const params: unknown[] = [];
    for (const e of byKey.values()) {
      const now = e.now ?? Date.now();
      const p = params.length;
      values.push(`($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::vector, $${p + 5}, $${p + 6}::jsonb, $${p + 7}, $${p + 8}, $${p + 9}, $${p + 8})`);
      params.push(
        e.scopeKey,
        e.exactHash,
        this.opts.embedderId,
        e.embedding ? toVectorSql(e.embedding) : null,
        e.promptText,
        JSON.stringify(e.answer),
        e.model,
        new Date(now),
        new Date(now + (e.ttlMs ?? this.ttlMs)),
      );
    }
    // An existing live entry is kept (never stored twice); an expired one is replaced.
    await this.opts.store.pool.query(
      `INSERT INTO ${this.t} (scope_key, exact_hash, embedder, embedding, prompt, answer, model, created_at, expires_at, last_hit_at)
       VALUES ${values.join(', ')}
       ON CONFLICT (scope_key, exact_hash) DO UPDATE SET
         embedder = EXCLUDED.embedder, embedding = EXCLUDED.embedding, prompt = EXCLUDED.prompt,
         answer = EXCLUDED.answer, model = EXCLUDED.model, created_at = EXCLUDED.created_at,
         expires_at = EXCLUDED.expires_at, last_hit_at = EXCLUDED.last_hit_at, hit_count = 0
       WHERE ${this.t}.expires_at <= EXCLUDED.created_at`,
      params,
    );
    for (const e of byKey.values()) this.noteLive(e.scopeKey, (e.now ?? Date.now()) + (e.ttlMs ?? this.ttlMs));
    const scopes = [...new Set([...byKey.values()].map((e) => e.scopeKey))];
    try {
      await this.opts.store.pool.query(
        `DELETE FROM ${this.t} c USING (
           SELECT id, row_number() OVER (PARTITION BY scope_key ORDER BY last_hit_at DESC, id DESC) AS rn
             FROM ${this.t} WHERE scope_key = ANY($1)
         ) r
         WHERE c.id = r.id AND r.rn > $2`,
        [scopes, this.maxPerScope],
      );
    } catch (err) {
      this.opts.onError?.('evict', err);
    }
  }

  private async writeHits(batch: PendingHit[]): Promise<void> {
    const agg = new Map<string, { n: number; at: number }>();
    for (const h of batch) {
      const a = agg.get(h.id);
      if (a) {
        a.n++;
        a.at = Math.max(a.at, h.at);
      } else agg.set(h.id, { n: 1, at: h.at });
    }
    const ids = [...agg.keys()];
    await this.opts.store.pool.query(
      `UPDATE ${this.t} c SET hit_count = c.hit_count + u.n, last_hit_at = greatest(c.last_hit_at, u.at)
         FROM (SELECT unnest($1::bigint[]) AS id, unnest($2::int[]) AS n, unnest($3::timestamptz[]) AS at) u
        WHERE c.id = u.id`,
      [ids, ids.map((id) => agg.get(id)!.n), ids.map((id) => new Date(agg.get(id)!.at))],
    );
  }
}
