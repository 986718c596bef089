/**
 * The `rate-limit` stage in process (test/helpers/harness.ts): admission and 429s in the
 * client's dialect, `x-ratelimit-*` headers, settlement to the answer's real usage (usage
 * fields, counted text, a client gone mid-stream), refunds when nothing was served, budgets with
 * an injected clock, the budget fraction published for routing, config errors naming the key,
 * and the example configs.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { identityOptionsSchema } from '../../extproc/identity/index.js';
import { rateLimitOptionsSchema, type Limiter } from '../../extproc/limits/index.js';
import { ConfigError, loadConfigFile, parseConfig } from '../../extproc/config/load.js';
import { StreamExchange } from '../../extproc/pipeline/exchange.js';
import { HeaderView } from '../../extproc/pipeline/headers.js';
import { ServiceRegistry } from '../../extproc/pipeline/services.js';
import { outcomeOf } from '../../extproc/server/outcome.js';
import type { Catalog, Stage } from '../../extproc/pipeline/stage.js';
import { identityStage } from '../../extproc/stages/identity.js';
import { budgetUsage, createRateLimit, rateLimitState } from '../../extproc/stages/rateLimit.js';
import { routeChoice, type RouteChoice } from '../../extproc/stages/route.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { countBpe } from '../../extproc/tokens/index.js';
import { pipelineOf, runScript, type Script } from '../helpers/harness.js';

/** 2026-11-30T10:00:30Z: mid-minute, mid-day. */
const T0 = Date.UTC(2026, 10, 30, 10, 0, 30);
const registries: ServiceRegistry[] = [];
afterAll(async () => {
  await Promise.all(registries.map((r) => r.closeAll()));
});

const headerView = (h: Record<string, string>) => new HeaderView(Object.entries(h).map(([key, value]) => ({ key, raw_value: Buffer.from(value) })));
const identity = identityStage.create(identityOptionsSchema.parse({ sources: ['header'] }), {} as never);
const models = { 'gpt-4o': { provider: 'openai', pricing: { inputPerMTok: 2.5, outputPerMTok: 10 } }, 'mistral-large': { provider: 'openai', upstreamName: 'mistral-large-latest', aliases: ['cheap'] } };

function build(options: Record<string, unknown>, clock?: { now: number }): { stage: Stage; limiter: Limiter; run: (s: Script) => ReturnType<typeof runScript> } {
  const registry = new ServiceRegistry(createLogger('error', () => undefined), 0);
  registries.push(registry);
  const gen = registry.generation();
  let limiter: Limiter | undefined;
  const catalog: Catalog = { providers: { openai: {} }, models, routes: [] };
  const stage = createRateLimit(rateLimitOptionsSchema.parse(options), { log: createLogger('error', () => undefined), services: gen.services, catalog }, {
    ...(clock ? { clock: () => clock.now } : {}),
    onLimiter: (l) => (limiter = l),
  });
  gen.commit();
  const pipeline = pipelineOf([identity, stage]);
  return { stage, limiter: limiter!, run: (s) => runScript(pipeline, { ...s, requestHeaders: { 'x-caller-id': 'team-a', ...s.requestHeaders } }) };
}

const chat = (extra: Record<string, unknown> = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello there' }], ...extra });
const jsonAnswer = (prompt: number, completion: number) =>
  JSON.stringify({ id: 'c1', object: 'chat.completion', model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } });
const answered = (prompt: number, completion: number): Partial<Script> => ({ responseHeaders: { 'content-type': 'application/json' }, responseChunks: [jsonAnswer(prompt, completion)] });
const sse = (events: unknown[]) => events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`);
const delta = (content: string) => ({ id: 'c', object: 'chat.completion.chunk', model: 'gpt-4o', choices: [{ index: 0, delta: { content }, finish_reason: null }] });

describe('rate-limit stage: admission', () => {
  it('admits up to the limit, then 429 in the OpenAI shape with retry-after and x-ratelimit-* headers', async () => {
    const { run } = build({ limits: [{ scope: 'caller', requestsPerMinute: 2 }] }, { now: T0 });
    const first = await run({ requestBody: chat(), ...answered(5, 5) });
    expect(first.reply).toBeUndefined();
    expect(Object.fromEntries(first.responseHeaders!.setHeaders)).toMatchObject({ 'x-ratelimit-limit-requests': '2', 'x-ratelimit-remaining-requests': '1', 'x-ratelimit-reset-requests': '30s' });
    await run({ requestBody: chat(), ...answered(5, 5) });
    const third = await run({ requestBody: chat(), ...answered(5, 5) });
    expect(third.reply?.status).toBe(429);
    expect(third.reply!.headers).toMatchObject({ 'retry-after': '30', 'x-ratelimit-remaining-requests': '0' });
    const err = JSON.parse(String(third.reply!.body)) as { error: { type: string; message: string } };
    expect(err.error.type).toBe('rate_limit_error');
    expect(err.error.message).toContain('requests per minute per caller');
    expect(err.error.message).not.toContain('team-a');
    // Another caller has its own counter.
    expect((await run({ requestHeaders: { 'x-caller-id': 'team-b' }, requestBody: chat(), ...answered(5, 5) })).reply).toBeUndefined();
  });

  it('per-model limits count the routed model when a route decided, else the body model (aliases and upstream names resolved)', async () => {
    const { stage, run } = build({ limits: [{ scope: 'model', model: 'mistral-large', requestsPerMinute: 2 }] }, { now: T0 });
    // Without a route: "cheap" and "mistral-large-latest" are mistral-large; gpt-4o is not limited.
    expect((await run({ requestBody: chat({ model: 'cheap' }), ...answered(1, 1) })).reply).toBeUndefined();
    expect((await run({ requestBody: chat({ model: 'mistral-large-latest' }), ...answered(1, 1) })).reply).toBeUndefined();
    expect((await run({ requestBody: chat({ model: 'cheap' }) })).reply?.status).toBe(429);
    expect((await run({ requestBody: chat({ model: 'gpt-4o' }), ...answered(1, 1) })).reply).toBeUndefined();
    // A route that sends gpt-4o to mistral-large: the request is counted on mistral-large.
    const choice = { route: 'cheap-tier', chain: ['mistral-large'], start: 0, cluster: 'c', dialect: 'openai', api: 'chat', requested: 'gpt-4o', decidedAt: 0 } as RouteChoice;
    const routed = pipelineOf([identity, { name: 'route', failure: 'open', requestBody: (x) => x.set(routeChoice, choice) }, stage]);
    const r = await runScript(routed, { requestHeaders: { 'x-caller-id': 'team-a' }, requestBody: chat({ model: 'gpt-4o' }) });
    expect(r.reply?.status).toBe(429);
    expect(r.x.get(rateLimitState)).toMatchObject({ model: { name: 'mistral-large' }, route: 'cheap-tier' });
  });

  it('answers in the Anthropic shape on /v1/messages', async () => {
    const { run } = build({ limits: [{ scope: 'caller', requestsPerMinute: 0 }] }, { now: T0 });
    const r = await run({ requestHeaders: { ':path': '/v1/messages' }, requestBody: { model: 'claude-sonnet-4', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] } });
    expect(r.reply?.status).toBe(429);
    expect(JSON.parse(String(r.reply!.body))).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
  });

  it('the window rolls with the clock', async () => {
    const clock = { now: T0 };
    const { run } = build({ limits: [{ scope: 'caller', requestsPerMinute: 1 }] }, clock);
    expect((await run({ requestBody: chat(), ...answered(1, 1) })).reply).toBeUndefined();
    expect((await run({ requestBody: chat(), ...answered(1, 1) })).reply?.status).toBe(429);
    clock.now = T0 + 30_000; // the next minute
    expect((await run({ requestBody: chat(), ...answered(1, 1) })).reply).toBeUndefined();
  });
});

describe('rate-limit stage: settlement', () => {
  const tokenLimit = { limits: [{ scope: 'caller', outputTokensPerMinute: 10_000 }] };

  it('an answer that used far more than reserved is settled to its usage fields, and the next request sees it', async () => {
    const { run } = build(tokenLimit, { now: T0 });
    const first = await run({ requestBody: chat({ max_tokens: 10 }), ...answered(12, 9_000) });
    expect(first.responseHeaders!.setHeaders.get('x-ratelimit-remaining-tokens')).toBe('9990'); // reserved 10
    const second = await run({ requestBody: chat({ max_tokens: 100 }), ...answered(12, 50) });
    expect(second.responseHeaders!.setHeaders.get('x-ratelimit-remaining-tokens')).toBe(String(10_000 - 9_000 - 100));
    const third = await run({ requestBody: chat({ max_tokens: 2_000 }) });
    expect(third.reply?.status).toBe(429); // 9,050 used + 2,000 > 10,000
  });

  it('a stream without usage fields is settled to its text counted with the model tokenizer', async () => {
    const { run } = build(tokenLimit, { now: T0 });
    const words = ['The', ' quick', ' brown', ' fox', ' jumps'];
    await run({ requestBody: chat({ max_tokens: 500, stream: true }), responseHeaders: { 'content-type': 'text/event-stream' }, responseChunks: [...sse(words.map(delta)), 'data: [DONE]\n\n'] });
    const next = await run({ requestBody: chat({ max_tokens: 1 }), ...answered(1, 1) });
    const counted = countBpe(words.join(''), 'o200k_base');
    expect(next.responseHeaders!.setHeaders.get('x-ratelimit-remaining-tokens')).toBe(String(10_000 - counted - 1));
  });

  it('a client gone mid-stream is charged for what was generated; its concurrency slot is freed', async () => {
    const limits = { limits: [{ scope: 'caller', outputTokensPerMinute: 10_000, concurrentStreams: 1 }] };
    const { stage, run } = build(limits, { now: T0 });
    const pipeline = pipelineOf([identity, stage]);
    // Driven by hand: two chunks pass, then the stream is reset before its end.
    const x = new StreamExchange(createLogger('error', () => undefined), 1 << 20, 'router');
    x.requestHeaders = headerView({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', 'x-caller-id': 'team-a' });
    await pipeline.run('requestHeaders', x);
    x.requestBody = Buffer.from(JSON.stringify(chat({ max_tokens: 4_000, stream: true })));
    expect((await pipeline.run('requestBody', x, { bytes: x.requestBody, endOfStream: true })).answered).toBe(false);
    x.responseHeaders = headerView({ ':status': '200', 'content-type': 'text/event-stream' });
    await pipeline.run('responseHeaders', x);
    const words = ['alpha', ' beta', ' gamma'];
    for (const chunk of sse(words.map(delta))) await pipeline.run('responseBody', x, { bytes: Buffer.from(chunk), endOfStream: false });
    const outcome = outcomeOf(x, 'cancelled', true);
    expect(outcome.kind).toBe('client-gone');
    await pipeline.finish(x, outcome);
    const next = await run({ requestBody: chat({ max_tokens: 1 }), ...answered(1, 1) });
    expect(next.reply).toBeUndefined(); // the slot was freed
    expect(next.responseHeaders!.setHeaders.get('x-ratelimit-remaining-tokens')).toBe(String(10_000 - countBpe(words.join(''), 'o200k_base') - 1));
  });

  it('a client gone before any of the body passed pays for the prompt, not the reserved output', async () => {
    const { stage, run } = build({ limits: [{ scope: 'caller', requestsPerMinute: 2, outputTokensPerMinute: 10_000 }] }, { now: T0 });
    const pipeline = pipelineOf([identity, stage]);
    const x = new StreamExchange(createLogger('error', () => undefined), 1 << 20, 'router');
    x.requestHeaders = headerView({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', 'x-caller-id': 'team-a' });
    await pipeline.run('requestHeaders', x);
    x.requestBody = Buffer.from(JSON.stringify(chat({ max_tokens: 4_000, stream: true })));
    await pipeline.run('requestBody', x, { bytes: x.requestBody, endOfStream: true });
    x.responseHeaders = headerView({ ':status': '200', 'content-type': 'text/event-stream' });
    await pipeline.run('responseHeaders', x);
    const outcome = outcomeOf(x, 'cancelled', true);
    expect(outcome.kind).toBe('client-gone');
    await pipeline.finish(x, outcome);
    const next = await run({ requestBody: chat({ max_tokens: 1 }), ...answered(1, 1) });
    expect(next.responseHeaders!.setHeaders.get('x-ratelimit-remaining-tokens')).toBe(String(10_000 - 1)); // no output charged
    expect(next.responseHeaders!.setHeaders.get('x-ratelimit-remaining-requests')).toBe('0'); // the request itself counts
  });

  it('nothing served (no response, a provider error before any output, a later stage answering): everything refunded', async () => {
    const { run } = build({ limits: [{ scope: 'caller', requestsPerMinute: 1, concurrentStreams: 1 }] }, { now: T0 });
    // The provider refused with 500: refunded, so the one request per minute is still there.
    const failed = await run({ requestBody: chat(), responseHeaders: { ':status': '500', 'content-type': 'application/json' }, responseChunks: ['{"error":{"message":"boom"}}'] });
    expect(failed.outcome.kind).toBe('upstream-error');
    // No response reached the gateway (Envoy's own 503 after an exhausted chain): refunded.
    const lost = await run({ requestBody: chat() });
    expect(lost.outcome.kind).toBe('no-response');
    // A later stage answered itself (e.g. a cache hit after the limiter): refunded.
    const { stage } = build({ limits: [{ scope: 'caller', requestsPerMinute: 1 }] }, { now: T0 });
    const answering = pipelineOf([identity, stage, { name: 'answers', failure: 'open', requestBody: (_x, out) => out.respond({ status: 200, body: '{}' }) }]);
    for (let i = 0; i < 3; i++) {
      const r = await runScript(answering, { requestHeaders: { 'x-caller-id': 'team-a' }, requestBody: chat() });
      expect(r.outcome.kind).toBe('immediate');
      expect(r.reply?.status).toBe(200); // never 429: each answer gave its reservation back
    }
    const ok = await run({ requestBody: chat(), ...answered(1, 1) });
    expect(ok.reply).toBeUndefined();
    expect((await run({ requestBody: chat() })).reply?.status).toBe(429);
  });

  it('a streamed answer is settled from the observability stream when pipeline.streamObserver is on', async () => {
    const { stage } = build({ limits: [{ scope: 'caller', outputTokensPerMinute: 10_000 }] }, { now: T0 });
    const pipeline = pipelineOf([identity, stage], { streamObserver: true });
    expect(pipeline.needs.responseBody).toBe('never'); // the main stream carries no body for it
    const x = new StreamExchange(createLogger('error', () => undefined), 1 << 20, 'router');
    x.requestHeaders = headerView({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', 'x-caller-id': 'team-a' });
    await pipeline.run('requestHeaders', x);
    x.requestBody = Buffer.from(JSON.stringify(chat({ max_tokens: 10, stream: true })));
    await pipeline.run('requestBody', x, { bytes: x.requestBody, endOfStream: true });
    x.responseHeaders = headerView({ ':status': '200', 'content-type': 'text/event-stream' });
    await pipeline.run('responseHeaders', x);
    const usage = { id: 'c', object: 'chat.completion.chunk', model: 'gpt-4o', choices: [], usage: { prompt_tokens: 9, completion_tokens: 7_000, total_tokens: 7_009 } };
    const chunks = [...sse([delta('hi'), usage]), 'data: [DONE]\n\n'];
    for (let i = 0; i < chunks.length; i++) await pipeline.observe(x, { bytes: Buffer.from(chunks[i]!), endOfStream: i === chunks.length - 1, observed: true });
    x.responseComplete = true;
    await pipeline.finish(x, outcomeOf(x, 'completed', true));
    const next = await runScript(pipelineOf([identity, stage]), { requestHeaders: { 'x-caller-id': 'team-a' }, requestBody: chat({ max_tokens: 1 }), ...answered(1, 1) });
    expect(next.responseHeaders!.setHeaders.get('x-ratelimit-remaining-tokens')).toBe(String(10_000 - 7_000 - 1));
  });
});

describe('rate-limit stage: budgets', () => {
  const budget = { limits: [{ scope: 'caller', usdPerDay: 0.01 }] }; // 10,000 µ$

  it('publishes the fraction used at request headers; 429 once spent, until the day rolls', async () => {
    const clock = { now: T0 };
    const { run } = build(budget, clock);
    // 1,000 in × 2.5 + 200 out × 10 = 4,500 µ$.
    const first = await run({ requestBody: chat({ max_tokens: 10 }), ...answered(1_000, 200) });
    expect(await first.x.get(budgetUsage)).toBe(0);
    const second = await run({ requestBody: chat({ max_tokens: 10 }), ...answered(1_000, 200) });
    expect(await second.x.get(budgetUsage)).toBeCloseTo(0.45);
    const third = await run({ requestBody: chat({ max_tokens: 10 }), ...answered(1_000, 200) });
    expect(await third.x.get(budgetUsage)).toBeCloseTo(0.9); // nearly spent: still served (routing steers it)
    expect(third.reply).toBeUndefined();
    const fourth = await run({ requestBody: chat() });
    expect(await fourth.x.get(budgetUsage)).toBeCloseTo(1.35);
    expect(fourth.reply?.status).toBe(429);
    expect(JSON.parse(String(fourth.reply!.body)).error.message).toContain('USD budget per day per caller is spent');
    expect(Number(fourth.reply!.headers!['retry-after'])).toBe(14 * 3600 - 30); // until 00:00 UTC
    clock.now = Date.UTC(2026, 11, 1, 0, 0, 1);
    const nextDay = await run({ requestBody: chat(), ...answered(1, 1) });
    expect(nextDay.reply).toBeUndefined();
    expect(await nextDay.x.get(budgetUsage)).toBe(0);
  });

  it('without budgets no fraction is published (route decides at once) and no limiter call is made for it', async () => {
    const { run } = build({ limits: [{ scope: 'caller', requestsPerMinute: 5 }] }, { now: T0 });
    const r = await run({ requestBody: chat(), ...answered(1, 1) });
    expect(r.x.get(budgetUsage)).toBeUndefined();
    expect(r.x.get(rateLimitState)?.decision?.admitted).toBe(true);
  });
});

describe('rate-limit config', () => {
  const check = (stage: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    try {
      parseConfig({ pipeline: { stages: ['parse-request', 'identity', { name: 'rate-limit', ...stage }] }, ...extra }, [stageCheck(builtinStages)]);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it('a negative limit names its key', () => {
    expect(check({ limits: [{ scope: 'caller', requestsPerMinute: -1 }] }).join('\n')).toMatch(/pipeline\.stages\[2\]\.limits\[0\]\.requestsPerMinute: /);
  });

  it('an unknown model in a per-model limit names its key', () => {
    expect(check({ limits: [{ scope: 'model', model: 'gpt-9', requestsPerMinute: 5 }] })).toContain('pipeline.stages[2].limits[0].model: unknown model "gpt-9"');
  });

  it('a budget over a model without a price names its key; the built-in table or models.*.pricing price it', () => {
    const providers = { p: { api: 'openai', cluster: 'openai' } };
    expect(check({ limits: [{ scope: 'caller', usdPerDay: 5 }] }, { providers, models: { 'in-house-llm': { provider: 'p' } } })).toContain(
      'pipeline.stages[2].limits[0].usdPerDay: budget needs a price for model "in-house-llm" (set models.in-house-llm.pricing)',
    );
    expect(check({ limits: [{ scope: 'caller', usdPerDay: 5 }] }, { providers, models: { 'gpt-4o': { provider: 'p' } } })).toEqual([]);
    expect(check({ limits: [{ scope: 'caller', usdPerDay: 5 }] }, { providers, models: { 'in-house-llm': { provider: 'p', pricing: { inputPerMTok: 1, outputPerMTok: 2 } } } })).toEqual([]);
  });

  it('rate-limit needs identity before it', () => {
    const problems = (() => {
      try {
        parseConfig({ pipeline: { stages: ['parse-request', { name: 'rate-limit', limits: [] }] } }, [stageCheck(builtinStages)]);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    })();
    expect(problems.join('\n')).toContain('needs slot "callerIdentity"');
  });

  it('the example configs load (memory, and Redis with REDIS_URL set)', async () => {
    const dir = join(import.meta.dirname, '../../config/examples');
    const memory = await loadConfigFile(join(dir, 'rate-limit.yaml'), {}, [stageCheck(builtinStages)]);
    expect(memory.pipeline.stages).toContainEqual({ name: 'rate-limit', backend: 'memory', limits: [{ scope: 'caller', requestsPerMinute: 10 }] });
    const redis = await loadConfigFile(join(dir, 'rate-limit-redis.yaml'), { REDIS_URL: 'redis://127.0.0.1:6379' }, [stageCheck(builtinStages)]);
    expect(JSON.stringify(redis.pipeline.stages)).toContain('redis://127.0.0.1:6379');
    await expect(loadConfigFile(join(dir, 'rate-limit-redis.yaml'), {}, [stageCheck(builtinStages)])).rejects.toThrow(/REDIS_URL/);
  });
});
