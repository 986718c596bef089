// The `rate-limit` stage's added latency on the request path: the request-body phase (estimate
// + reserve, the only part a request waits for) with the stage against the same pipeline
// without it, p50/p99, in memory and on Redis over loopback (a redis-server started here). The
// settle in `finish` runs off the critical path; its cost is printed apart.
// Run: npx tsx bench/rate-limit-stage.ts
import { identityOptionsSchema } from '../extproc/identity/index.js';
import { rateLimitOptionsSchema } from '../extproc/limits/index.js';
import { renderClientError } from '../extproc/errors.js';
import { StreamExchange } from '../extproc/pipeline/exchange.js';
import { HeaderView } from '../extproc/pipeline/headers.js';
import { Pipeline } from '../extproc/pipeline/pipeline.js';
import { ServiceRegistry } from '../extproc/pipeline/services.js';
import type { Stage } from '../extproc/pipeline/stage.js';
import { outcomeOf } from '../extproc/server/outcome.js';
import { identityStage } from '../extproc/stages/identity.js';
import { parseRequestStage } from '../extproc/stages/parseRequest.js';
import { createRateLimit } from '../extproc/stages/rateLimit.js';
import { createLogger } from '../extproc/telemetry/logger.js';
import { startRedis } from '../test/helpers/redis.js';

const quiet = createLogger('error', () => undefined);
const limits = [
  { scope: 'caller', requestsPerMinute: 1e9, inputTokensPerMinute: 1e12, outputTokensPerMinute: 1e12, concurrentStreams: 1e6, usdPerDay: 1e6 },
  { scope: 'caller-model', inputTokensPerMinute: 1e12 },
  { scope: 'model', requestsPerMinute: 1e9, concurrentStreams: 1e6 },
];
const identity = identityStage.create(identityOptionsSchema.parse({ sources: ['header'] }), {} as never);
// parse-request parses the JSON in every configured pipeline, so the baseline pays for it too.
const parse = parseRequestStage.create(undefined, {} as never);
const answer = Buffer.from(JSON.stringify({ id: 'c', object: 'chat.completion', model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 300, completion_tokens: 50, total_tokens: 350 } }));

const headers = (h: Record<string, string>) => new HeaderView(Object.entries(h).map(([key, value]) => ({ key, raw_value: Buffer.from(value) })));
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor((p / 100) * a.length))]!;

async function one(pipeline: Pipeline, body: Buffer, caller: string): Promise<{ body: number; finish: number }> {
  const x = new StreamExchange(quiet, 64 << 20, 'router');
  x.requestHeaders = headers({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', 'x-caller-id': caller });
  await pipeline.run('requestHeaders', x);
  x.requestBody = body;
  const t0 = performance.now();
  await pipeline.run('requestBody', x, { bytes: body, endOfStream: true });
  const t1 = performance.now();
  x.responseHeaders = headers({ ':status': '200', 'content-type': 'application/json' });
  await pipeline.run('responseHeaders', x);
  x.responseComplete = true;
  await pipeline.run('responseBody', x, { bytes: answer, endOfStream: true });
  const t2 = performance.now();
  await pipeline.finish(x, outcomeOf(x, 'completed', true));
  return { body: t1 - t0, finish: performance.now() - t2 };
}

async function measure(label: string, stages: Stage[], body: Buffer, n: number): Promise<{ p50: number; p99: number; fin50: number }> {
  const pipeline = new Pipeline(stages, { onInvalidRequest: 'continue', renderError: renderClientError });
  for (let i = 0; i < 500; i++) await one(pipeline, body, `c${i % 200}`);
  const b: number[] = [];
  const f: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await one(pipeline, body, `c${i % 200}`);
    b.push(r.body);
    f.push(r.finish);
  }
  const out = { p50: pct(b, 50) * 1000, p99: pct(b, 99) * 1000, fin50: pct(f, 50) * 1000 };
  console.log(`${label.padEnd(34)} request body p50 ${out.p50.toFixed(1).padStart(8)} µs  p99 ${out.p99.toFixed(1).padStart(8)} µs   finish p50 ${out.fin50.toFixed(1)} µs`);
  return out;
}

function prompt(bytes: number): Buffer {
  const words = 'the gateway counts tokens and keeps callers inside their limits while streams flow '.repeat(Math.ceil(bytes / 84)).slice(0, bytes);
  return Buffer.from(JSON.stringify({ model: 'gpt-4o', max_tokens: 512, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: words }] }));
}

const redis = await startRedis();
const registry = new ServiceRegistry(quiet, 0);
try {
  const gen = registry.generation();
  const deps = { log: quiet, services: gen.services, catalog: { providers: {}, models: {}, routes: [] } };
  const memory = createRateLimit(rateLimitOptionsSchema.parse({ backend: 'memory', limits }), deps);
  const onRedis = createRateLimit(rateLimitOptionsSchema.parse({ backend: 'redis', redis: { url: redis.url, timeoutMs: 1000 }, limits }), deps);
  gen.commit();
  const n = 5000;
  for (const size of [1024, 100 * 1024]) {
    const body = prompt(size);
    console.log(`-- prompt ${size / 1024} KB`);
    const base = await measure('without rate-limit', [parse, identity], body, n);
    const mem = await measure('rate-limit, memory', [parse, identity, memory], body, n);
    const red = await measure('rate-limit, redis (loopback)', [parse, identity, onRedis], body, n);
    console.log(`   added p50: memory ${(mem.p50 - base.p50).toFixed(1)} µs, redis ${(red.p50 - base.p50).toFixed(1)} µs`);
  }
} finally {
  await registry.closeAll();
  await redis.stop();
}
