/**
 * Semantic cache bench: lexical embedder speed, the quality set's hit rate by threshold, and
 * the embedded store's lookup latency (p50/p99) at 10k and 100k entries, insert throughput and
 * the longest event-loop stall of this (the gateway's) process while the store works.
 *
 *   npx tsx bench/cache.ts [--sizes 10000,100000]
 *   npx tsx bench/cache.ts --gateway [--requests 500]   (only the end-to-end section)
 *
 * `--gateway`: the `semantic-cache` stage end to end (HTTP client → Envoy stand-in running the
 * shipped envoy.yaml → gateway over gRPC → fake provider): latency of an exact hit, a similar hit
 * (embedding + vector search + verification) and a provider round trip with `no-cache`.
 *
 * Bulk data is built inside the store with INSERT … SELECT (random unit-free vectors, scopes of
 * uneven size: scope = floor(1000 · r³), so a few scopes are large and most are small).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { cosineSimilarity, LexicalEmbedder, lexicalVector, SemanticCache, verifyMatch } from '../extproc/cache/index.js';
import { openStore, toVectorSql, type Store } from '../extproc/store/index.js';
import { DEFAULT_SYSTEM, LONG_PROMPT_CHANGES, QUALITY_SET } from '../test/cache/quality-set.js';

const DIMS = 384;
const sizes = (process.argv.includes('--sizes') ? process.argv[process.argv.indexOf('--sizes') + 1]! : '10000,100000')
  .split(',')
  .map(Number);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const f = (x: number, d = 2): string => x.toFixed(d);

async function embedderBench(): Promise<void> {
  const e = new LexicalEmbedder(DIMS);
  const text = 'The quick brown fox jumps over the lazy dog, again and again. '.repeat(17).slice(0, 1024);
  for (let i = 0; i < 200; i++) await e.embed([text]);
  const n = 2000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await e.embed([text]);
  console.log(`lexical embedder: ${f(((performance.now() - t0) / n) * 1000, 1)} µs per 1 KB text (${DIMS} dims)`);
}

function qualityBench(): void {
  const e = new LexicalEmbedder(DIMS);
  const pairs = [...QUALITY_SET, ...LONG_PROMPT_CHANGES];
  const scored = pairs.map((p) => {
    const va = lexicalVector(p.a, e.dimensions);
    const vb = lexicalVector(p.b, e.dimensions);
    const sameScope = (p.systemA ?? DEFAULT_SYSTEM) === (p.systemB ?? DEFAULT_SYSTEM);
    return { p, sim: cosineSimilarity(va, vb), verified: verifyMatch(p.b, p.a).ok, sameScope };
  });
  console.log('quality set (similarity alone → with verifyMatch and scopes):');
  for (const t of [0.8, 0.85, 0.9, 0.95]) {
    const hitSet = scored.filter((s) => s.p.expect === 'hit');
    const missSet = scored.filter((s) => s.p.expect === 'miss');
    const hitsRaw = hitSet.filter((s) => s.sim >= t).length;
    const hits = hitSet.filter((s) => s.sim >= t && s.verified && s.sameScope).length;
    const falseRaw = missSet.filter((s) => s.sim >= t).length;
    const falseHits = missSet.filter((s) => s.sim >= t && s.verified && s.sameScope).length;
    console.log(
      `  threshold ${t}: must-hit ${hitsRaw}/${hitSet.length} → ${hits}/${hitSet.length}; false hits ${falseRaw}/${missSet.length} → ${falseHits}/${missSet.length}`,
    );
  }
}

async function storeBench(size: number): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gw-cache-bench-'));
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const t0 = performance.now();
  const store: Store = await openStore({ kind: 'embedded', dataDir: path.join(dir, 'db') });
  const startMs = performance.now() - t0;
  await store.migrate();
  loop.enable();
  try {
    const embedder = new LexicalEmbedder(DIMS);
    const cache = new SemanticCache({ store, embedderId: embedder.id, purgeIntervalMs: 0, maxEntriesPerScope: 1_000_000 });
    // Bulk build without the HNSW index (≈10 ms per row with it in PGlite), as a restore would.
    await store.pool.query('DROP INDEX semantic_cache_embedding');
    const b0 = performance.now();
    const chunk = 5_000;
    for (let done = 0; done < size; done += chunk) {
      await store.pool.query(
        `INSERT INTO semantic_cache (scope_key, exact_hash, embedder, embedding, prompt, answer, model, expires_at)
         SELECT 'scope-' || floor(1000 * power(random(), 3))::int, 'h' || g, $1,
                (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, ${DIMS}) d WHERE g > 0),
                'prompt ' || g, '{"text":"answer"}'::jsonb, 'gpt-4o', now() + interval '1 day'
           FROM generate_series($2::int, $3::int) g`,
        [embedder.id, done, Math.min(size, done + chunk) - 1],
      );
    }
    await store.pool.query('ANALYZE semantic_cache');
    const buildS = (performance.now() - b0) / 1000;
    const sizesRow = await store.pool.query<{ n: number; mx: number; scopes: number }>(
      `SELECT count(*)::int AS scopes, max(c)::int AS mx, min(c)::int AS n FROM (SELECT count(*) c FROM semantic_cache GROUP BY scope_key) s`,
    );
    const sz = sizesRow.rows[0]!;
    // Lookups: a real prompt into scopes picked like the data (big scopes often), exact miss → vector search.
    const q = new Float32Array(DIMS).map(() => Math.random() - 0.5);
    const lat: number[] = [];
    const exactLat: number[] = [];
    loop.reset();
    for (let i = 0; i < 300; i++) {
      const scope = `scope-${Math.floor(1000 * Math.random() ** 3)}`;
      const s0 = performance.now();
      await cache.lookup({ scopeKey: scope, exactHash: 'none', promptText: 'p', embedding: async () => q, threshold: 0.99 });
      lat.push(performance.now() - s0);
      const e0 = performance.now();
      await cache.lookup({ scopeKey: scope, exactHash: `h${i}`, promptText: 'p', threshold: 0.99 });
      exactLat.push(performance.now() - e0);
    }
    const lookupStall = loop.max / 1e6;
    // Largest scope alone (worst case for exact search within a scope).
    const big: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s0 = performance.now();
      await cache.lookup({ scopeKey: 'scope-0', exactHash: 'none', promptText: 'p', embedding: async () => q, threshold: 0.99 });
      big.push(performance.now() - s0);
    }
    // Inserts through the cache's write queue, HNSW index back in place.
    const i0 = performance.now();
    await store.pool.query('CREATE INDEX semantic_cache_embedding ON semantic_cache USING hnsw (embedding vector_cosine_ops)').catch(() => {});
    const hnswBuildS = (performance.now() - i0) / 1000;
    loop.reset();
    const n = 200;
    const w0 = performance.now();
    for (let i = 0; i < n; i++) {
      const v = (await embedder.embed([`new prompt ${i}`]))[0]!;
      cache.store({ scopeKey: `scope-${i % 50}`, exactHash: `new-${i}`, promptText: `new prompt ${i}`, embedding: v, answer: { i }, model: 'gpt-4o' });
    }
    await cache.flush();
    const insertPerS = n / ((performance.now() - w0) / 1000);
    console.log(
      `embedded store, ${size} entries (${sz.scopes} scopes, sizes ${sz.n}..${sz.mx}); worker start ${f(startMs, 0)} ms; bulk build ${f(buildS, 1)} s; HNSW build ${f(hnswBuildS, 1)} s\n` +
        `  exact-hash lookup p50 ${f(pct(exactLat, 50))} ms p99 ${f(pct(exactLat, 99))} ms\n` +
        `  miss + vector search in scope (exact) p50 ${f(pct(lat, 50))} ms p99 ${f(pct(lat, 99))} ms; largest scope (${sz.mx}) p50 ${f(pct(big, 50))} ms\n` +
        `  inserts via the write queue, HNSW present: ${f(insertPerS, 0)}/s; longest event-loop stall here: lookups ${f(lookupStall, 1)} ms, inserts+build ${f(loop.max / 1e6, 1)} ms`,
    );
    await cache.close();
  } finally {
    loop.disable();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function recallBench(): Promise<void> {
  // HNSW (with and without iterative scan) vs exact search inside a scope, many uneven scopes.
  const dir = mkdtempSync(path.join(tmpdir(), 'gw-cache-recall-'));
  const store = await openStore({ kind: 'embedded', dataDir: path.join(dir, 'db') });
  await store.migrate();
  try {
    const size = 5_000;
    await store.pool.query('DROP INDEX semantic_cache_embedding');
    await store.pool.query(
      `INSERT INTO semantic_cache (scope_key, exact_hash, embedder, embedding, prompt, answer, model, expires_at)
       SELECT 'scope-' || floor(200 * power(random(), 3))::int, 'h' || g, 'e',
              (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, ${DIMS}) d WHERE g > 0),
              'p', '{}'::jsonb, 'm', now() + interval '1 day' FROM generate_series(1, ${size}) g`,
    );
    await store.pool.query('CREATE INDEX semantic_cache_embedding ON semantic_cache USING hnsw (embedding vector_cosine_ops)');
    await store.pool.query('ANALYZE semantic_cache');
    const modes = { exact: 0, hnsw: 0, 'hnsw+iterative': 0 } as Record<string, number>;
    const time = { exact: [] as number[], hnsw: [] as number[], 'hnsw+iterative': [] as number[] } as Record<string, number[]>;
    const trials = 100;
    const c = await store.pool.connect();
    try {
      for (let i = 0; i < trials; i++) {
        const scope = `scope-${Math.floor(200 * Math.random() ** 3)}`;
        const v = toVectorSql(new Float32Array(DIMS).map(() => Math.random() - 0.5));
        const run = async (mode: string, order: string): Promise<string | undefined> => {
          await c.query(`SET hnsw.iterative_scan = ${mode === 'hnsw+iterative' ? 'relaxed_order' : 'off'}`);
          const s0 = performance.now();
          const r = await c.query<{ id: string }>(
            `SELECT id::text FROM semantic_cache WHERE scope_key = $1 ORDER BY ${order} LIMIT 1`,
            [scope, v],
          );
          time[mode]!.push(performance.now() - s0);
          return r.rows[0]?.id;
        };
        const truth = await run('exact', '(embedding <=> $2::vector) + 0');
        modes.exact! += 1;
        if ((await run('hnsw', 'embedding <=> $2::vector')) === truth) modes.hnsw! += 1;
        if ((await run('hnsw+iterative', 'embedding <=> $2::vector')) === truth) modes['hnsw+iterative']! += 1;
      }
    } finally {
      c.release();
    }
    console.log(`recall@1 within a scope vs exact search (${size} rows, 200 uneven scopes, ${trials} queries):`);
    for (const m of Object.keys(modes)) console.log(`  ${m}: recall ${f(modes[m]! / trials)}, p50 ${f(pct(time[m]!, 50))} ms, p99 ${f(pct(time[m]!, 99))} ms`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The stage end to end through the stand-in: hit latency as a client sees it. */
async function gatewayBench(requests: number): Promise<void> {
  const { startStandin } = await import('../test/envoy-standin/standin.js');
  const { loadBootstrapFile, parseBootstrap } = await import('../test/envoy-standin/config/index.js');
  const { startFakeProvider } = await import('../test/fakes/index.js');
  const { startTestGateway } = await import('../test/helpers/gateway.js');
  const { activeCacheServices } = await import('../extproc/stages/semanticCache.js');
  const envoyYamlPath = path.join(import.meta.dirname, '../envoy/envoy.yaml');
  const dir = mkdtempSync(path.join(tmpdir(), 'cache-bench-gw-'));
  const dataDir = path.join(dir, 'store');
  const provider = await startFakeProvider({ kind: 'openai' });
  const gateway = await startTestGateway({
    logging: { level: 'warn' },
    pipeline: { streamObserver: false, stages: ['parse-request', { name: 'identity', sources: ['xfcc'] }, { name: 'semantic-cache', store: { kind: 'embedded', dataDir } }] },
  });
  const bootstrap = parseBootstrap(loadBootstrapFile(envoyYamlPath));
  const endpoints: Record<string, string[][]> = {};
  for (const name of ['llm_chain', 'openai', 'anthropic', 'mistral']) {
    const c = bootstrap.clusters.get(name);
    if (c) endpoints[name] = c.priorities.map((p) => p.map(() => provider.url));
  }
  const envoy = await startStandin({ envoyYamlPath, extProcAddress: `127.0.0.1:${gateway.port}`, clusterEndpoints: endpoints, seed: 7 });
  try {
    const svc = activeCacheServices().find((c) => c.config.store.kind === 'embedded' && c.config.store.dataDir === dataDir)!;
    await svc.whenReady(120_000);
    const headers = {
      'content-type': 'application/json',
      authorization: 'Bearer sk-bench',
      'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/gw/sa/envoy;URI=spiffe://cluster.local/ns/shop/sa/checkout',
    };
    const call = async (content: string, extra: Record<string, string> = {}, stream = false): Promise<{ ms: number; cache: string | null }> => {
      const t0 = performance.now();
      const res = await fetch(`${envoy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...headers, ...extra },
        body: JSON.stringify({ model: 'gpt-4o', stream, messages: [{ role: 'user', content }] }),
      });
      await res.arrayBuffer();
      return { ms: performance.now() - t0, cache: res.headers.get('x-gateway-cache') };
    };
    const prompt = 'Explain how a hash table works.';
    await call(prompt);
    for (let i = 0; i < 1000 && svc.counters.stored < 1; i++) await new Promise((r) => setTimeout(r, 10));
    await svc.flush();
    const series = async (label: string, content: string, extra: Record<string, string>, expect: string, stream = false): Promise<void> => {
      for (let i = 0; i < 50; i++) await call(content, extra, stream);
      const ms: number[] = [];
      let other = 0;
      for (let i = 0; i < requests; i++) {
        const r = await call(content, extra, stream);
        // A lookup over its budget is a miss by design (fail open): counted, not timed.
        if (r.cache !== expect) other++;
        else ms.push(r.ms);
      }
      console.log(`  ${label}: p50 ${f(pct(ms, 50))} ms, p99 ${f(pct(ms, 99))} ms${other ? ` (${other} not ${expect})` : ''}`);
    };
    console.log(`gateway end to end (${requests} sequential requests each, c=1, after 50 warm-up):`);
    await series('exact hit (JSON)', prompt, {}, 'hit');
    await series('exact hit (SSE)', prompt, {}, 'hit', true);
    await series('similar hit (embedding + vector search + verify)', 'Explain how a hash table works please', {}, 'hit');
    await series('provider round trip (cache-control: no-cache, fake provider)', prompt, { 'cache-control': 'no-cache, no-store' }, 'bypass');
    console.log(`  counters: ${JSON.stringify({ hits: svc.counters.hits, misses: svc.counters.misses, overBudget: svc.counters.overBudget })}`);
  } finally {
    await envoy.close();
    await gateway.close(200);
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.lock`, { force: true });
  }
}

if (process.argv.includes('--gateway')) {
  const requests = process.argv.includes('--requests') ? Number(process.argv[process.argv.indexOf('--requests') + 1]) : 500;
  await gatewayBench(requests);
} else {
  await embedderBench();
  qualityBench();
  await recallBench();
  for (const s of sizes) await storeBench(s);
}
