/**
 * The `rate-limit` stage end to end: the official SDKs through the Envoy stand-in (shipped
 * envoy.yaml), the gateway (identity from the XFCC SPIFFE URI, then rate-limit), a fake
 * provider, and a real redis-server. The limit windows run on an injected, frozen clock (a test
 * copy of the stage, `rate-limit-clocked`), so no assertion depends on where in the minute it runs.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadConfigFile } from '../../extproc/config/load.js';
import { FailoverLimiter, type Limiter } from '../../extproc/limits/index.js';
import type { StageFactory } from '../../extproc/pipeline/stage.js';
import { rateLimitFactory } from '../../extproc/stages/rateLimit.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';
import { countBpe } from '../../extproc/tokens/index.js';
import { startStandin, type Standin } from '../envoy-standin/standin.js';
import { startFakeProvider, type FakeProvider } from '../fakes/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { allUpstreamsTo, shippedBootstrap, startE2E as startE2EWith, type E2E } from './helpers.js';

/** 2026-11-30T10:00:30Z: mid-minute. */
const T0 = Date.UTC(2026, 10, 30, 10, 0, 30);
const clock = { now: T0 };
const limiters: Limiter[] = [];
const clocked = rateLimitFactory({ name: 'rate-limit-clocked', clock: () => clock.now, onLimiter: (l) => limiters.push(l) }) as unknown as StageFactory<never>;

const spiffe = (sa: string) => `By=spiffe://cluster.local/ns/llm/sa/gateway;Hash=abc;URI=spiffe://cluster.local/ns/shop/sa/${sa}`;
const messages = [{ role: 'user' as const, content: 'Say hello to the gateway' }];
let prefixSeq = 0;

function config(limit: Record<string, unknown>, backend: Record<string, unknown>): Record<string, unknown> {
  return {
    pipeline: { stages: ['parse-request', { name: 'identity', sources: ['xfcc'] }, { name: 'rate-limit-clocked', ...backend, limits: [limit] }] },
  };
}
const redisBackend = (url: string, extra: Record<string, unknown> = {}) => ({ backend: 'redis', redis: { url, keyPrefix: `e2e${++prefixSeq}`, timeoutMs: 50, ...extra } });

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const openai = (url: string, sa = 'checkout') => new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-client-cert': spiffe(sa) } });

/** Fires `n` chat calls at once; returns how many were served and the rate-limit errors. */
async function burst(clients: OpenAI[], n: number): Promise<{ ok: number; limited: InstanceType<typeof OpenAI.RateLimitError>[]; other: unknown[] }> {
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => clients[i % clients.length]!.chat.completions.create({ model: 'gpt-4o', messages })));
  const limited: InstanceType<typeof OpenAI.RateLimitError>[] = [];
  const other: unknown[] = [];
  let ok = 0;
  for (const r of results) {
    if (r.status === 'fulfilled') ok++;
    else if (r.reason instanceof OpenAI.RateLimitError) limited.push(r.reason);
    else other.push(r.reason);
  }
  return { ok, limited, other };
}


/** The shipped envoy.yaml, parsed (a fresh copy per call). */
/** The gateway + the stand-in + one fake OpenAI provider on every upstream cluster (helpers' startE2E). */
const startE2E = (gatewayConfig: Record<string, unknown>, stages: StageFactory<never>[] = [], bootstrap = shippedBootstrap()): Promise<E2E> =>
  startE2EWith('openai', gatewayConfig, stages, 7, bootstrap);

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
beforeEach(() => {
  clock.now = T0;
});

describe.each(['memory', 'redis'] as const)('10 requests per minute per caller (%s backend)', (backend) => {
  let e: E2E;
  beforeAll(async () => {
    e = await startE2E(config({ scope: 'caller', requestsPerMinute: 10 }, backend === 'memory' ? { backend: 'memory' } : { ...redisBackend(redis.url, { timeoutMs: 2_000 }), timeoutMs: 5_000 }), [clocked]);
  });
  afterAll(() => e.close());

  it('100 concurrent requests: exactly 10 admitted, the rest get RateLimitError with retry-after', async () => {
    const { ok, limited, other } = await burst([openai(e.envoy.url)], 100);
    expect(other).toEqual([]);
    expect(ok).toBe(10);
    expect(limited).toHaveLength(90);
    expect(e.provider.requests).toHaveLength(10);
    for (const err of limited) {
      expect(err.headers?.get('retry-after')).toBe('30'); // until the minute ends
      expect(err.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(err.message).toContain('requests per minute per caller');
    }
    // Another caller has its own 10; its answers carry the x-ratelimit-* headers.
    const { response } = await openai(e.envoy.url, 'billing').chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('10');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('9');
    expect(response.headers.get('x-ratelimit-reset-requests')).toBe('30s');
    // The Anthropic SDK gets its own error type for the same limit.
    const anthropic = new Anthropic({ baseURL: e.envoy.url, apiKey: 'sk-ant-test', maxRetries: 0, defaultHeaders: { 'x-forwarded-client-cert': spiffe('checkout') } });
    const aerr = await anthropic.messages.create({ model: 'claude-sonnet-4', max_tokens: 10, messages }).catch((x: unknown) => x);
    expect(aerr).toBeInstanceOf(Anthropic.RateLimitError);
    expect((aerr as InstanceType<typeof Anthropic.RateLimitError>).headers?.get('retry-after')).toBe('30');
    // The next minute admits again.
    clock.now = T0 + 30_000;
    await expect(openai(e.envoy.url).chat.completions.create({ model: 'gpt-4o', messages })).resolves.toBeDefined();
  });
});

describe.each(['rate-limit.yaml', 'rate-limit-redis.yaml'] as const)('the contract config config/examples/%s (real clock)', (file) => {
  let e: E2E;
  beforeAll(async () => {
    const loaded = await loadConfigFile(join(import.meta.dirname, '../../config/examples', file), { REDIS_URL: redis.url }, [stageCheck(builtinStages)]);
    const { server: _server, ...rest } = loaded; // the test gateway listens on a free port
    e = await startE2E(rest as unknown as Record<string, unknown>);
  });
  afterAll(() => e.close());

  it('15 concurrent calls from one SPIFFE caller: 10 served, 5 get RateLimitError', async () => {
    // Real minute windows: start clear of a minute boundary, so the burst falls in one window.
    const second = new Date().getUTCSeconds();
    if (second >= 55) await new Promise((r) => setTimeout(r, (61 - second) * 1000));
    const caller = `contract-${file.length}-${Date.now()}`;
    const { ok, limited, other } = await burst([openai(e.envoy.url, caller)], 15);
    expect(other).toEqual([]);
    expect(ok).toBe(10);
    expect(limited).toHaveLength(5);
    expect(Number(limited[0]!.headers?.get('retry-after'))).toBeGreaterThan(0);
  }, 15_000);
});

describe('two gateway instances sharing one Redis', () => {
  let provider: FakeProvider;
  const gateways: TestGateway[] = [];
  const envoys: Standin[] = [];
  beforeAll(async () => {
    provider = await startFakeProvider({ kind: 'openai' });
    // Exactness, not speed: two gateways, two stand-ins and 100 SDK calls share 2 cores with the
    // rest of the suite, so the event loop can lag past the 50 ms Redis bound, and a call that
    // misses it is decided by the failure policy (open: per replica). The outage test below
    // covers the bounds.
    const backend = { ...redisBackend(redis.url, { timeoutMs: 2_000 }), timeoutMs: 5_000 };
    for (let i = 0; i < 2; i++) {
      const gateway = await startTestGateway(config({ scope: 'caller', requestsPerMinute: 10 }, backend), [clocked]);
      gateways.push(gateway);
      const bootstrap = shippedBootstrap();
      envoys.push(await startStandin({ bootstrap, extProcAddress: `127.0.0.1:${gateway.port}`, clusterEndpoints: allUpstreamsTo(bootstrap, provider.url), seed: 7 + i }));
    }
  });
  afterAll(async () => {
    for (const s of envoys) await s.close();
    for (const g of gateways) await g.close(200);
    await provider.close();
  });

  it('100 concurrent requests spread over both admit 10 in total, never 20', async () => {
    const { ok, limited, other } = await burst(envoys.map((s) => openai(s.url)), 100);
    expect(other).toEqual([]);
    expect(ok).toBe(10);
    expect(limited).toHaveLength(90);
    expect(provider.requests).toHaveLength(10);
  });
});

describe('token limits: settled to real usage', () => {
  let e: E2E;
  const settled = () => e.gateway.logs.filter((l) => l['msg'] === 'rate limit settled');
  beforeAll(async () => {
    e = await startE2E(config({ scope: 'caller', outputTokensPerMinute: 6_000, concurrentStreams: 1 }, redisBackend(redis.url)), [clocked]);
  });
  afterAll(() => e.close());
  beforeEach(() => e.provider.reset());

  it('a stream that used far more than estimated is settled to its usage, and the next request sees it', async () => {
    const client = openai(e.envoy.url, 'heavy');
    e.provider.script({ usage: { outputTokens: 5_000 } });
    const { data: stream, response } = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 10, stream: true, stream_options: { include_usage: true } }).withResponse();
    expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe('5990'); // 10 reserved
    let usage: { completion_tokens: number } | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage?.completion_tokens).toBe(5_000);
    await until(() => settled().length === 1);
    expect(settled()[0]).toMatchObject({ source: 'provider', output_tokens: 5_000 });
    // 5,000 used + 1,500 > 6,000: refused; 900 fits.
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 1_500 }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as Error).message).toContain('output tokens per minute per caller');
    const { response: r3 } = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 900 }).withResponse();
    expect(r3.headers.get('x-ratelimit-remaining-tokens')).toBe('100');
  });

  it('a client that disconnects mid-stream is charged for what it received, and its stream slot is freed', async () => {
    const client = openai(e.envoy.url, 'leaver');
    e.provider.script({ holdAfterChunks: 4 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 4_000, stream: true }, { signal: controller.signal });
    let text = '';
    let chunks = 0;
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (++chunks === 4) controller.abort();
      }
    } catch {
      // aborted
    }
    // The stand-in ends the ext_proc stream with a half-close when the client leaves (the server
    // then reports `completed` with the response incomplete; a real Envoy reset reports
    // `client-gone`): either way the text that passed is what is charged.
    const gone = (l: Record<string, unknown>) => l['source'] === 'counted' && (l['outcome'] === 'client-gone' || l['outcome'] === 'completed');
    await until(() => settled().some(gone));
    e.provider.release();
    const line = settled().find(gone)!;
    expect(text.length).toBeGreaterThan(0);
    expect(line['output_tokens']).toBe(countBpe(text, 'o200k_base'));
    // concurrentStreams: 1 — the slot was freed, and the tokens charged show in the next request.
    const { response } = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 100 }).withResponse();
    expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(6_000 - countBpe(text, 'o200k_base') - 100));
  });
});

/** The shipped envoy.yaml with the observability-mode ext_proc filter (`pipeline.streamObserver`) after the main one. */
function bootstrapWithObserver(): Record<string, any> {
  const doc = shippedBootstrap();
  const filters: Record<string, any>[] = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
  const observer = {
    name: 'envoy.filters.http.ext_proc/observer',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
      grpc_service: { envoy_grpc: { cluster_name: 'ext_proc' } },
      observability_mode: true,
      stat_prefix: 'observer',
      processing_mode: { request_header_mode: 'SEND', response_header_mode: 'SEND', request_body_mode: 'NONE', response_body_mode: 'STREAMED' },
    },
  };
  const at = filters.findIndex((f) => f.name === observer.name);
  if (at < 0) filters.splice(filters.findIndex((f) => f.name === 'envoy.filters.http.ext_proc') + 1, 0, observer);
  // Short, so the observability stream (and with it `finish`) ends soon after the response.
  filters.find((f) => f.name === observer.name)!.typed_config.deferred_close_timeout = '0.2s';
  return doc;
}

describe('token limits with pipeline.streamObserver (usage read from the observability stream)', () => {
  let e: E2E;
  const settled = () => e.gateway.logs.filter((l) => l['msg'] === 'rate limit settled');
  beforeAll(async () => {
    const cfg = config({ scope: 'caller', outputTokensPerMinute: 6_000 }, { backend: 'memory' });
    e = await startE2E({ ...cfg, pipeline: { ...(cfg['pipeline'] as object), streamObserver: true } }, [clocked], bootstrapWithObserver());
  });
  afterAll(() => e.close());

  it('a stream and a JSON answer are settled from the observed bytes; headers still come on the main stream', async () => {
    const client = openai(e.envoy.url, 'observed');
    e.provider.script({ usage: { outputTokens: 4_000 } });
    const { data: stream, response } = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 10, stream: true, stream_options: { include_usage: true } }).withResponse();
    expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe('5990');
    for await (const _ of stream) void _;
    await until(() => settled().length === 1);
    expect(settled()[0]).toMatchObject({ source: 'provider', output_tokens: 4_000 });
    e.provider.script({ usage: { outputTokens: 1_000 } });
    const { response: r2 } = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 20 }).withResponse();
    expect(r2.headers.get('x-ratelimit-remaining-tokens')).toBe(String(6_000 - 4_000 - 20));
    await until(() => settled().length === 2);
    expect(settled()[1]).toMatchObject({ source: 'provider', output_tokens: 1_000 });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 1_001 }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError); // 5,000 used + 1,001 > 6,000
  });
});

describe('budgets', () => {
  let e: E2E;
  beforeAll(async () => {
    // gpt-4o is priced by the built-in table (2.5 / 10 USD per MTok).
    e = await startE2E(config({ scope: 'caller', usdPerDay: 0.001 }, redisBackend(redis.url)), [clocked]);
  });
  afterAll(() => e.close());

  it('a caller over its daily USD budget gets 429 until the day rolls (injected clock)', async () => {
    const client = openai(e.envoy.url, 'spender');
    e.provider.script({ usage: { inputTokens: 100, outputTokens: 100 } }); // 250 + 1,000 µ$ > 1,000 µ$
    await client.chat.completions.create({ model: 'gpt-4o', messages });
    await until(() => e.gateway.logs.some((l) => l['msg'] === 'rate limit settled'));
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as Error).message).toContain('USD budget per day per caller is spent');
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBe(String(14 * 3600 - 30));
    clock.now = T0 + 3_600_000; // same day: still refused
    expect(await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((x: unknown) => x)).toBeInstanceOf(OpenAI.RateLimitError);
    clock.now = Date.UTC(2026, 11, 1, 0, 0, 5); // the next day
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages })).resolves.toBeDefined();
  });
});

describe.each(['closed', 'open'] as const)('Redis killed mid-load, then restarted (failure: %s)', (failure) => {
  let e: E2E;
  let limiter: FailoverLimiter;
  beforeAll(async () => {
    const before = limiters.length;
    e = await startE2E(config({ scope: 'caller', requestsPerMinute: 1_000 }, redisBackend(redis.url, { failure })), [clocked]);
    limiter = limiters.slice(before).find((l): l is FailoverLimiter => l instanceof FailoverLimiter)!;
    await limiter.ready(5_000);
  });
  afterAll(async () => {
    await e.close();
  });

  it('the policy holds, no request hangs, and shared limits come back', async () => {
    const client = openai(e.envoy.url, `outage-${failure}`);
    const timed = async (): Promise<{ ok: boolean; err?: unknown; ms: number }> => {
      const start = performance.now();
      try {
        await client.chat.completions.create({ model: 'gpt-4o', messages });
        return { ok: true, ms: performance.now() - start };
      } catch (err) {
        return { ok: false, err, ms: performance.now() - start };
      }
    };
    const healthy = await Promise.all(Array.from({ length: 10 }, timed));
    expect(healthy.every((r) => r.ok)).toBe(true);
    // Kill Redis while a batch is in flight.
    const inFlight = Promise.all(Array.from({ length: 20 }, timed));
    await redis.kill();
    const during = [...(await inFlight), ...(await Promise.all(Array.from({ length: 20 }, timed)))];
    // Nobody waits on the dead Redis: well under the 5 s message timeout (loopback, no provider delay).
    for (const r of during) expect(r.ms).toBeLessThan(2_000);
    for (const r of during) if (!r.ok) expect(r.err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(limiter.stats.degraded).toBe(true);
    const tail = during.slice(20); // sent after the kill was observed
    if (failure === 'closed') {
      expect(tail.every((r) => !r.ok)).toBe(true);
      expect((tail[0]!.err as Error).message).toContain('Rate limiter unavailable');
      expect((tail[0]!.err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBe('1');
    } else {
      expect(tail.every((r) => r.ok)).toBe(true);
      expect(limiter.stats.localDecisions).toBeGreaterThan(0);
    }
    expect(e.gateway.logs.filter((l) => String(l['msg']).startsWith('rate limiter: redis unavailable'))).toHaveLength(1);
    await redis.restart();
    // The client reconnects on its own; the first probe after the interval restores shared limits.
    const deadline = Date.now() + 15_000;
    while (limiter.stats.degraded && Date.now() < deadline) {
      await timed();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(limiter.stats.degraded).toBe(false);
    expect((await timed()).ok).toBe(true);
    expect(e.gateway.logs.some((l) => l['msg'] === 'rate limiter: redis reachable again, shared limits restored')).toBe(true);
  });
});
