import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLD, deriveCacheKeys, LexicalEmbedder, SemanticCache } from '../../extproc/cache/index.js';
import type { Store } from '../../extproc/store/index.js';
import { startBackend, type Backend } from '../store/backends.js';
import { DEFAULT_SYSTEM, LONG_PROMPT_CHANGES, QUALITY_SET, type QualityPair } from './quality-set.js';

describe('quality set through the cache at the default threshold', () => {
  let backend: Backend;
  let store: Store;
  let cache: SemanticCache;
  const embedder = new LexicalEmbedder();
  beforeAll(async () => {
    backend = await startBackend('postgres');
    store = await backend.open();
    await store.migrate();
    cache = new SemanticCache({ store, embedderId: embedder.id, purgeIntervalMs: 0 });
  });
  afterAll(async () => {
    await cache?.close();
    await store?.close();
    await backend?.dispose();
  });

  const keysOf = (p: QualityPair, text: string, system: string) => {
    // Each pair gets its own caller, so pairs cannot hit each other's entries.
    const d = deriveCacheKeys({ model: 'gpt-4o', messages: [{ role: 'system', content: system }, { role: 'user', content: text }] }, 'openai', {
      caller: `quality:${p.id}`,
      route: 'chat',
      model: 'gpt-4o',
    });
    if (!d.cacheable) throw new Error(d.reason);
    return d;
  };

  it('serves no must-not pair, and most must-hit pairs', async () => {
    const pairs = [...QUALITY_SET, ...LONG_PROMPT_CHANGES];
    for (const p of pairs) {
      const k = keysOf(p, p.a, p.systemA ?? DEFAULT_SYSTEM);
      const [v] = await embedder.embed([p.a]);
      cache.store({ scopeKey: k.scopeKey, exactHash: k.exactHash, promptText: p.a, embedding: v!, answer: { id: p.id }, model: 'gpt-4o' });
    }
    await cache.flush();
    const falseHits: string[] = [];
    const hits: string[] = [];
    const misses: string[] = [];
    for (const p of pairs) {
      const k = keysOf(p, p.b, p.systemB ?? DEFAULT_SYSTEM);
      const r = await cache.lookup({
        scopeKey: k.scopeKey,
        exactHash: k.exactHash,
        promptText: k.newestUserText,
        embedding: async () => (await embedder.embed([k.newestUserText]))[0]!,
        threshold: DEFAULT_THRESHOLD,
      });
      if (p.expect === 'miss' && r.hit) falseHits.push(p.id);
      if (p.expect === 'hit') (r.hit ? hits : misses).push(p.id);
    }
    const mustHit = pairs.filter((p) => p.expect === 'hit').length;
    console.log(
      `quality set @ threshold ${DEFAULT_THRESHOLD}: must-hit ${hits.length}/${mustHit} (${((100 * hits.length) / mustHit).toFixed(0)}%), ` +
        `missed: ${misses.join(', ') || 'none'}; false hits: ${falseHits.length}/${pairs.length - mustHit}`,
    );
    expect(falseHits).toEqual([]);
    expect(hits.length / mustHit).toBeGreaterThanOrEqual(0.75);
  });
});
