import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheStoreError,
  deriveCacheKeys,
  EmbedderError,
  LexicalEmbedder,
  SemanticCache,
  type CacheEntry,
  type LookupQuery,
} from '../../extproc/cache/index.js';
import type { Store } from '../../extproc/store/index.js';
import { BACKENDS, startBackend, type Backend } from '../store/backends.js';

const embedder = new LexicalEmbedder(384);
const vec = async (t: string): Promise<Float32Array> => (await embedder.embed([t]))[0]!;
const T0 = Date.parse('2030-01-01T00:00:00Z');

function keys(caller: string, text: string, system = 'Be brief.'): { scopeKey: string; exactHash: string; newestUserText: string } {
  const d = deriveCacheKeys(
    { model: 'gpt-4o', messages: [{ role: 'system', content: system }, { role: 'user', content: text }] },
    'openai',
    { caller, route: 'chat', model: 'gpt-4o' },
  );
  if (!d.cacheable) throw new Error(d.reason);
  return d;
}

async function entry(caller: string, text: string, answer: unknown, over: Partial<CacheEntry> = {}): Promise<CacheEntry> {
  const k = keys(caller, text);
  return { scopeKey: k.scopeKey, exactHash: k.exactHash, promptText: text, embedding: await vec(text), answer, model: 'gpt-4o', now: T0, ...over };
}

function query(caller: string, text: string, over: Partial<LookupQuery> = {}): LookupQuery {
  const k = keys(caller, text);
  return { scopeKey: k.scopeKey, exactHash: k.exactHash, promptText: text, embedding: () => vec(text), threshold: 0.9, now: T0 + 1_000, ...over };
}

describe.each(BACKENDS)('semantic cache on %s', (kind) => {
  let backend: Backend;
  let store: Store;
  let cache: SemanticCache;
  beforeAll(async () => {
    backend = await startBackend(kind);
    store = await backend.open();
    await store.migrate();
    cache = new SemanticCache({ store, embedderId: embedder.id, purgeIntervalMs: 0 });
  });
  afterAll(async () => {
    await cache?.close();
    await store?.close();
    await backend?.dispose();
  });

  it('misses on an empty scope, then hits exactly, then by similarity', async () => {
    expect(await cache.lookup(query('alice', 'What is the capital of France?'))).toEqual({ hit: false, reason: 'no-entry' });
    cache.store(await entry('alice', 'What is the capital of France?', { text: 'Paris.' }));
    await cache.flush();
    const exact = await cache.lookup(query('alice', 'What is the capital of France?', { embedding: () => Promise.reject(new Error('not called')) }));
    expect(exact).toMatchObject({ hit: true, match: 'exact', similarity: 1, answer: { text: 'Paris.' }, model: 'gpt-4o', ageMs: 1_000 });
    const similar = await cache.lookup(query('alice', 'what is the capital of france'));
    expect(similar).toMatchObject({ hit: true, match: 'similar', answer: { text: 'Paris.' } });
    if (similar.hit) expect(similar.similarity).toBeGreaterThan(0.99);
  });

  it('never serves another scope, whatever the caller id or system prompt', async () => {
    cache.store(await entry('a|b', 'Tell me the secret plan', { text: 'tenant a|b' }));
    await cache.flush();
    const attempts = [
      query('a', 'Tell me the secret plan'),
      query('a|b ', 'Tell me the secret plan'),
      query('A|B', 'Tell me the secret plan'),
      { ...query('a|b', 'Tell me the secret plan'), scopeKey: keys('a|b', 'x', 'Other system').scopeKey },
    ];
    for (const q of attempts) expect(await cache.lookup({ ...q, threshold: 0.01 })).toMatchObject({ hit: false });
    // A route/caller split that would collide under string concatenation.
    const k1 = deriveCacheKeys({ messages: [{ role: 'user', content: 'q' }] }, 'openai', { caller: 'a|b', route: 'c', model: 'm' });
    const k2 = deriveCacheKeys({ messages: [{ role: 'user', content: 'q' }] }, 'openai', { caller: 'a', route: 'b|c', model: 'm' });
    expect(k1.cacheable && k2.cacheable && k1.scopeKey !== k2.scopeKey).toBe(true);
    expect(await cache.lookup(query('a|b', 'Tell me the secret plan'))).toMatchObject({ hit: true, answer: { text: 'tenant a|b' } });
  });

  it('verifies a similar candidate: a different number is a miss', async () => {
    cache.store(await entry('bob', 'What is 17 times 23?', { text: '391' }));
    await cache.flush();
    const r = await cache.lookup(query('bob', 'What is 17 times 24?', { threshold: 0.5 }));
    expect(r).toMatchObject({ hit: false, reason: 'verify-numbers' });
    expect(await cache.lookup(query('bob', 'What is 17 times 24?'))).toMatchObject({ hit: false, reason: 'below-threshold' });
  });

  it('stores an entry once, keeps a live one, replaces an expired one', async () => {
    cache.store(await entry('carol', 'Hello there', { v: 1 }));
    cache.store(await entry('carol', 'Hello there', { v: 2 }));
    await cache.flush();
    cache.store(await entry('carol', 'Hello there', { v: 3 }));
    await cache.flush();
    const k = keys('carol', 'Hello there');
    const rows = await store.pool.query('SELECT answer FROM semantic_cache WHERE scope_key = $1', [k.scopeKey]);
    expect(rows.rows).toHaveLength(1);
    // The first write made a live entry; later writes of the same key do not replace it.
    expect(rows.rows[0].answer).toEqual({ v: 1 });
    cache.store(await entry('carol', 'Hello there', { v: 4 }, { now: T0 + 48 * 3600_000 }));
    await cache.flush();
    const after = await store.pool.query('SELECT answer, hit_count FROM semantic_cache WHERE scope_key = $1', [k.scopeKey]);
    expect(after.rows).toEqual([{ answer: { v: 4 }, hit_count: 0 }]);
  });

  it('never serves an expired entry or one older than max-age, and purges expired rows', async () => {
    cache.store(await entry('dave', 'Short lived', { v: 1 }, { ttlMs: 10_000 }));
    await cache.flush();
    expect(await cache.lookup(query('dave', 'Short lived', { now: T0 + 5_000 }))).toMatchObject({ hit: true });
    expect(await cache.lookup(query('dave', 'Short lived', { now: T0 + 5_000, maxAgeMs: 1_000 }))).toMatchObject({ hit: false });
    expect(await cache.lookup(query('dave', 'short lived!', { now: T0 + 10_001 }))).toMatchObject({ hit: false });
    expect(await cache.lookup(query('dave', 'Short lived', { now: T0 + 10_001 }))).toMatchObject({ hit: false });
    expect(await cache.purgeExpired(T0 + 10_001)).toBeGreaterThanOrEqual(1);
    const k = keys('dave', 'Short lived');
    expect((await store.pool.query('SELECT 1 FROM semantic_cache WHERE scope_key = $1', [k.scopeKey])).rowCount).toBe(0);
  });

  it('records hits and evicts the least recently hit beyond the per-scope maximum', async () => {
    const small = new SemanticCache({ store, embedderId: embedder.id, maxEntriesPerScope: 3, purgeIntervalMs: 0 });
    for (let i = 0; i < 3; i++) small.store(await entry('erin', `question number ${'abc'[i]}`, { i }, { now: T0 + i }));
    await small.flush();
    const hit = await small.lookup(query('erin', 'question number a', { now: T0 + 100 }));
    expect(hit).toMatchObject({ hit: true });
    await small.flush();
    small.store(await entry('erin', 'question number d', { i: 3 }, { now: T0 + 50 }));
    await small.flush();
    const k = keys('erin', 'x');
    const rows = await store.pool.query<{ prompt: string; hit_count: number }>(
      'SELECT prompt, hit_count FROM semantic_cache WHERE scope_key = $1 ORDER BY prompt',
      [k.scopeKey],
    );
    expect(rows.rows).toEqual([
      { prompt: 'question number a', hit_count: 1 },
      { prompt: 'question number c', hit_count: 0 },
      { prompt: 'question number d', hit_count: 0 },
    ]);
    await small.close();
  });

  it('does not compare vectors of another embedder', async () => {
    const other = new SemanticCache({ store, embedderId: 'http:other:384', purgeIntervalMs: 0 });
    other.store(await entry('fred', 'What is the capital of Spain?', { v: 1 }));
    await other.flush();
    expect(await cache.lookup(query('fred', 'what is the capital of spain'))).toEqual({ hit: false, reason: 'no-entry' });
    expect(await other.lookup(query('fred', 'what is the capital of spain'))).toMatchObject({ hit: true });
  });

  it('drops and counts writes beyond its bounded queue', async () => {
    const tiny = new SemanticCache({ store, embedderId: embedder.id, maxPendingWrites: 2, purgeIntervalMs: 0 });
    const e = await entry('gina', 'q', {});
    const accepted = [1, 2, 3, 4, 5].map((i) => tiny.store({ ...e, exactHash: `h${i}` }));
    expect(accepted).toEqual([true, true, false, false, false]);
    await tiny.flush();
    expect(tiny.stats().entries).toEqual({ pending: 0, written: 2, dropped: 3, failed: 0 });
  });

  it('an empty scope costs one statement: no embedding, no vector search', async () => {
    let embedded = 0;
    const miss = await cache.lookup(query('nobody-here', 'anything', { embedding: () => ((embedded++), Promise.reject(new Error('not needed'))) }));
    expect(miss).toMatchObject({ hit: false, reason: 'no-entry' });
    expect(embedded).toBe(0);
  });

  it('surfaces embedder failures and store failures as errors (the stage fails open)', async () => {
    const err = new EmbedderError('timeout', 'embeddings call timed out after 50 ms');
    // An empty scope needs no embedding at all (no similar entry can exist): give it one entry.
    cache.store(await entry('hank', 'something else entirely', {}));
    await cache.flush();
    await expect(cache.lookup(query('hank', 'anything', { embedding: () => Promise.reject(err) }))).rejects.toBe(err);
    const other = await backend.open().catch(() => undefined);
    if (kind === 'postgres' && other) {
      const c2 = new SemanticCache({ store: other, embedderId: embedder.id, purgeIntervalMs: 0 });
      await other.close();
      await expect(c2.lookup(query('hank', 'anything'))).rejects.toBeInstanceOf(CacheStoreError);
      c2.store(await entry('hank', 'anything', {}));
      await c2.flush();
      expect(c2.stats().entries).toMatchObject({ failed: 1 });
    }
  });
});

describe('the only writer (embedded store) answers empty scopes without SQL', () => {
  let backend: Backend;
  let store: Store;
  let cache: SemanticCache;
  let statements = 0;
  beforeAll(async () => {
    backend = await startBackend('embedded');
    store = await backend.open();
    await store.migrate();
    // An entry written before this cache started: the index loaded at start must know it.
    const before = new SemanticCache({ store, embedderId: embedder.id, purgeIntervalMs: 0 });
    before.store(await entry('carol', 'Earlier question?', { text: 'Earlier answer.' }, { now: Date.now() }));
    await before.flush();
    await before.close();
    const query0 = store.pool.query.bind(store.pool);
    (store.pool as unknown as { query: unknown }).query = (...args: unknown[]) => {
      statements++;
      return (query0 as (...a: unknown[]) => unknown)(...args);
    };
    cache = new SemanticCache({ store, embedderId: embedder.id, purgeIntervalMs: 0, singleWriter: true });
    for (let i = 0; i < 100 && statements === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // the index load
  });
  afterAll(async () => {
    await cache?.close();
    await store?.close();
    await backend?.dispose();
  });

  it('a never-filled scope is a miss with no statement; a written one hits; an entry from before start is known', async () => {
    const now = Date.now();
    const before = statements;
    expect(await cache.lookup(query('dave', 'Anything at all?', { now }))).toEqual({ hit: false, reason: 'no-entry' });
    expect(statements).toBe(before);
    cache.store(await entry('dave', 'Anything at all?', { text: 'Yes.' }, { now }));
    await cache.flush();
    expect(await cache.lookup(query('dave', 'Anything at all?', { now: now + 1 }))).toMatchObject({ hit: true, match: 'exact' });
    expect(await cache.lookup(query('carol', 'Earlier question?', { now: Date.now() }))).toMatchObject({ hit: true, match: 'exact' });
    // After its entries expired, the scope is empty again: no statement.
    const later = statements;
    expect(await cache.lookup(query('dave', 'Anything at all?', { now: now + 25 * 3600_000 }))).toEqual({ hit: false, reason: 'no-entry' });
    expect(statements).toBe(later);
  });
});
