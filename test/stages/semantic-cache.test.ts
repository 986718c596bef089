/**
 * The `semantic-cache` stage through the pipeline harness, on a real embedded store (PGlite in
 * a worker, temp data dir): what is looked up, what is served and how, what is stored and what
 * never is. End-to-end behaviour with the SDKs is in test/e2e/semantic-cache.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayAnswer, textDeltas, type CachedAnswer } from '../../extproc/cache/replay.js';
import { ServiceRegistry } from '../../extproc/pipeline/services.js';
import type { Stage } from '../../extproc/pipeline/stage.js';
import { SseParser } from '../../extproc/providers/sse.js';
import { callerIdentity } from '../../extproc/stages/identity.js';
import { piiResponseCounts, piiStage } from '../../extproc/stages/pii.js';
import { piiOptionsSchema } from '../../extproc/pii/index.js';
import { loadConfigFile } from '../../extproc/config/load.js';
import { builtinStages, stageCheck } from '../../extproc/stages/registry.js';
import {
  activeCacheServices,
  cacheStatus,
  createSemanticCache,
  effectiveThreshold,
  parseCacheControl,
  semanticCacheOptionsSchema,
  type CacheService,
} from '../../extproc/stages/semanticCache.js';
import { cacheContribution } from '../../extproc/usage/contributions.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { pipelineOf, runScript, stage, type Run } from '../helpers/harness.js';
import { anthropicStream, openaiStream } from './pii-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'cache-stage-'));
const clock = { now: Date.parse('2026-11-20T10:00:00Z') };
const registry = new ServiceRegistry(createLogger('error', () => undefined), 0);
const gen = registry.generation();
let cacheStage: Stage;
let svc: CacheService;

function makeStage(options: Record<string, unknown> = {}): Stage {
  return createSemanticCache(
    semanticCacheOptionsSchema.parse({ store: { kind: 'embedded', dataDir: join(dir, 'store') }, ...options }),
    { log: createLogger('error', () => undefined), services: gen.services, catalog: { providers: {}, models: {}, routes: [] } },
    { clock: () => clock.now },
  );
}

beforeAll(async () => {
  cacheStage = makeStage();
  gen.commit();
  svc = activeCacheServices()[0]!;
  expect(await svc.whenReady(120_000)).toBeDefined();
}, 150_000);

afterAll(async () => {
  await registry.closeAll();
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${dir}.lock`, { force: true });
});

/** A pipeline: a stand-in for `identity` (and optionally more stages), then the cache. */
function pipe(caller: string | undefined, before: Stage[] = [], cache = cacheStage) {
  const id = stage('who', {
    requestHeaders(x) {
      if (caller !== undefined) x.set(callerIdentity, { caller, source: 'header' });
    },
  });
  return pipelineOf([id, ...before, cache]);
}

const ask = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content }], ...extra });
const askAnthropic = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'claude-sonnet-4', max_tokens: 256, messages: [{ role: 'user', content }], ...extra });

function openaiJson(content: string, finish = 'stop', extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-2024-08-06',
    choices: [{ index: 0, message: { role: 'assistant', content, ...extra }, finish_reason: finish }],
    usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
  });
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const SSE_HEADERS = { 'content-type': 'text/event-stream' };

/** A miss answered by the "provider" with `chunks`; waits until what it queued is written. */
async function missThenStore(p: ReturnType<typeof pipe>, body: object, chunks: string[], opts: { headers?: Record<string, string>; responseHeaders?: Record<string, string>; path?: string } = {}): Promise<Run> {
  const before = svc.counters.stored;
  const run = await runScript(p, {
    requestHeaders: { ...(opts.path ? { ':path': opts.path } : {}), ...opts.headers },
    requestBody: body,
    responseHeaders: opts.responseHeaders ?? JSON_HEADERS,
    responseChunks: chunks,
  });
  expect(run.reply).toBeUndefined();
  if (svc.counters.stored > before) await svc.flush();
  return run;
}

async function lookup(p: ReturnType<typeof pipe>, body: object, headers: Record<string, string> = {}): Promise<Run> {
  return runScript(p, { requestHeaders: headers, requestBody: body, responseHeaders: JSON_HEADERS, responseChunks: [openaiJson('fresh answer')] });
}

function replyText(run: Run): string {
  return Buffer.from(run.reply!.body!).toString();
}

describe('semantic-cache stage', () => {
  it('misses, stores the answer in finish, then serves it as the dialect’s JSON with hit headers and the saved usage', async () => {
    const p = pipe('tenant-a');
    const first = await missThenStore(p, ask('What is the capital of France?'), [openaiJson('Paris.')]);
    expect(first.x.get(cacheStatus)).toMatchObject({ status: 'miss', reason: 'no-entry' });
    expect(first.responseHeaders!.setHeaders.get('x-gateway-cache')).toBe('miss');
    expect(first.requestBody!.metadata.get('ai_gateway')).toMatchObject({ cache_status: 'miss' });

    const hit = await lookup(p, ask('What is the capital of France?'));
    expect(hit.reply).toBeDefined();
    expect(hit.reply!.status).toBe(200);
    expect(hit.reply!.headers).toMatchObject({ 'content-type': 'application/json', 'x-gateway-cache': 'hit', 'x-gateway-cache-similarity': '1.0000' });
    const body = JSON.parse(replyText(hit)) as Record<string, unknown>;
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4o-2024-08-06',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Paris.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
    });
    expect(hit.x.get(cacheStatus)).toMatchObject({ status: 'hit', match: 'exact', similarity: 1 });
    expect(hit.x.get(cacheContribution)).toEqual({ status: 'hit', savedUsage: { inputTokens: 12, outputTokens: 7 }, model: 'gpt-4o' });
    expect(hit.requestBody!.metadata.get('ai_gateway')).toMatchObject({ cache_status: 'hit' });
    expect(hit.outcome.kind).toBe('immediate');
  });

  it('a trivially reworded question hits by similarity; a different number misses', async () => {
    const p = pipe('tenant-reword');
    await missThenStore(p, ask('What is 17 times 23?'), [openaiJson('391')]);
    const reworded = await lookup(p, ask('what is 17 times 23'));
    expect(reworded.x.get(cacheStatus)).toMatchObject({ status: 'hit', match: 'similar' });
    expect(Number(reworded.reply!.headers!['x-gateway-cache-similarity'])).toBeGreaterThanOrEqual(0.9);
    const other = await lookup(p, ask('What is 17 times 24?'));
    expect(other.reply).toBeUndefined();
    expect(other.x.get(cacheStatus)?.status).toBe('miss');
  });

  it('the threshold header tightens, never loosens', async () => {
    expect(effectiveThreshold(0.9, '0.99')).toBe(0.99);
    expect(effectiveThreshold(0.9, '0.5')).toBe(0.9);
    expect(effectiveThreshold(0.9, 'abc')).toBe(0.9);
    expect(effectiveThreshold(0.9, '1.5')).toBe(0.9);
    const p = pipe('tenant-threshold');
    await missThenStore(p, ask('Explain how a hash table works.'), [openaiJson('Buckets.')]);
    const sim = (await lookup(p, ask('Explain how a hash table works please'))).x.get(cacheStatus);
    expect(sim).toMatchObject({ status: 'hit', match: 'similar' });
    expect(sim!.similarity!).toBeLessThan(0.999);
    const strict = await lookup(p, ask('Explain how a hash table works please'), { 'x-gateway-cache-threshold': '0.95' });
    expect(strict.x.get(cacheStatus)).toMatchObject({ status: 'miss', reason: 'below-threshold' });
    const loose = await lookup(p, ask('Explain how hash tables work in Java.'), { 'x-gateway-cache-threshold': '0.01' });
    expect(loose.x.get(cacheStatus)?.status).toBe('miss');
  });

  it('callers are hard partitions; without identity everyone shares "anonymous"', async () => {
    await missThenStore(pipe('tenant-x'), ask('Tell me the secret plan'), [openaiJson('Plan X.')]);
    expect((await lookup(pipe('tenant-y'), ask('Tell me the secret plan'))).x.get(cacheStatus)?.status).toBe('miss');
    expect((await lookup(pipe(undefined), ask('Tell me the secret plan'))).x.get(cacheStatus)?.status).toBe('miss');
    await missThenStore(pipe(undefined), ask('Shared question for everyone'), [openaiJson('Shared.')]);
    expect((await lookup(pipe(undefined), ask('Shared question for everyone'))).x.get(cacheStatus)?.status).toBe('hit');
    expect((await lookup(pipe('anonymous'), ask('Shared question for everyone'))).x.get(cacheStatus)?.status).toBe('hit');
  });

  it('streams: an OpenAI SSE answer is captured and replayed as SSE (include_usage), or as JSON to a non-streaming request', async () => {
    const p = pipe('tenant-sse');
    await missThenStore(p, ask('Name three colours', { stream: true }), [openaiStream(['Red,', ' green', ' and blue.'])], { responseHeaders: SSE_HEADERS });
    // stream is not part of the scope: a JSON request is served the same answer.
    const json = await lookup(p, ask('Name three colours'));
    expect(JSON.parse(replyText(json)).choices[0].message.content).toBe('Red, green and blue.');
    const sse = await lookup(p, ask('Name three colours', { stream: true, stream_options: { include_usage: true } }));
    expect(sse.reply!.headers!['content-type']).toMatch(/^text\/event-stream/);
    const events = new SseParser().push(Buffer.from(replyText(sse)));
    expect(events.at(-1)!.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Red, green and blue.');
    expect(chunks.at(-2).choices[0].finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 0 } });
  });

  it('Anthropic: a streamed answer is stored and replayed as the full event sequence', async () => {
    const p = pipe('tenant-anthropic');
    const path = '/v1/messages';
    await missThenStore(p, askAnthropic('Say hi', { stream: true }), [anthropicStream(['Hi', ' there!'])], { responseHeaders: SSE_HEADERS, path });
    const hit = await runScript(p, { requestHeaders: { ':path': path }, requestBody: askAnthropic('Say hi', { stream: true }) });
    const events = new SseParser().push(Buffer.from(replyText(hit)));
    expect(events.map((e) => e.event)).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const delta = JSON.parse(events[4]!.data);
    expect(delta).toMatchObject({ delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } });
    const json = await runScript(p, { requestHeaders: { ':path': path }, requestBody: askAnthropic('Say hi') });
    expect(JSON.parse(replyText(json))).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'text', text: 'Hi there!' }], stop_reason: 'end_turn' });
  });

  it('never stores: truncated answers, tool calls, errors, placeholders, PII found in the answer, no-store, hot temperatures', async () => {
    const cases: { name: string; body: object; chunks: string[]; headers?: Record<string, string>; status?: string; before?: Stage[]; sse?: boolean; reason: string }[] = [
      { name: 'length', body: ask('q-length'), chunks: [openaiJson('cut', 'length')], reason: 'finish-length' },
      { name: 'tools', body: ask('q-tools'), chunks: [openaiStream([], ['{"a":', '1}'])], sse: true, reason: 'tool-calls' },
      { name: 'error', body: ask('q-error'), chunks: ['{"error":{"message":"boom"}}'], status: '500', reason: 'status' },
      { name: 'placeholder', body: ask('q-pii'), chunks: [openaiJson('Write to <EMAIL_1> today.')], reason: 'pii-placeholder' },
      {
        name: 'pii-scan',
        body: ask('q-scan'),
        chunks: [openaiJson('Call me.')],
        before: [stage('scan', { responseHeaders: (x) => x.set(piiResponseCounts, { PHONE: 1 }) })],
        reason: 'pii-in-answer',
      },
      { name: 'no-store', body: ask('q-nostore'), chunks: [openaiJson('ok')], headers: { 'cache-control': 'no-store' }, reason: '' },
    ];
    for (const c of cases) {
      const p = pipe(`tenant-never-${c.name}`, c.before ?? []);
      const before = { ...svc.counters.notStored };
      const stored = svc.counters.stored;
      await runScript(p, {
        requestHeaders: c.headers ?? {},
        requestBody: c.body,
        responseHeaders: { ...(c.sse ? SSE_HEADERS : JSON_HEADERS), ...(c.status ? { ':status': c.status } : {}) },
        responseChunks: c.chunks,
      });
      expect(svc.counters.stored, c.name).toBe(stored);
      if (c.reason) expect(svc.counters.notStored[c.reason] ?? 0, c.name).toBe((before[c.reason] ?? 0) + 1);
      expect((await lookup(p, c.body)).x.get(cacheStatus)?.status, c.name).toBe('miss');
    }
    const hot = await lookup(pipe('tenant-hot'), ask('q-hot', { temperature: 1.5 }));
    expect(hot.x.get(cacheStatus)).toMatchObject({ status: 'bypass', reason: 'temperature' });
    expect(hot.x.responseBodyRequested).toBe(false);
  });

  it('cache-control: no-cache skips the lookup but refreshes the entry; max-age caps the age served', async () => {
    const p = pipe('tenant-cc');
    await missThenStore(p, ask('Cache control question'), [openaiJson('v1')]);
    const noCache = await missThenStore(p, ask('Cache control question'), [openaiJson('v2')], { headers: { 'cache-control': 'no-cache' } });
    expect(noCache.x.get(cacheStatus)).toMatchObject({ status: 'bypass', reason: 'no-cache' });
    // The live entry is kept (an entry is never stored twice): v1 is still what is served.
    expect(JSON.parse(replyText(await lookup(p, ask('Cache control question')))).choices[0].message.content).toBe('v1');
    clock.now += 120_000;
    expect((await lookup(p, ask('Cache control question'), { 'cache-control': 'max-age=60' })).x.get(cacheStatus)?.status).toBe('miss');
    expect((await lookup(p, ask('Cache control question'), { 'cache-control': 'max-age=600' })).x.get(cacheStatus)?.status).toBe('hit');
    expect(parseCacheControl('no-store, max-age=5')).toEqual({ noCache: false, noStore: true, maxAgeMs: 5000 });
  });

  it('entries expire after ttlSeconds', async () => {
    const short = makeStage({ ttlSeconds: 30 });
    const p = pipe('tenant-ttl', [], short);
    await missThenStore(p, ask('TTL question'), [openaiJson('soon gone')]);
    expect((await lookup(p, ask('TTL question'))).x.get(cacheStatus)?.status).toBe('hit');
    clock.now += 31_000;
    expect((await lookup(p, ask('TTL question'))).x.get(cacheStatus)).toMatchObject({ status: 'miss', reason: 'no-entry' });
  });

  it('a hit is never stored again', async () => {
    const p = pipe('tenant-once');
    await missThenStore(p, ask('Only once'), [openaiJson('once')]);
    const stored = svc.counters.stored;
    for (let i = 0; i < 3; i++) expect((await lookup(p, ask('Only once'))).x.get(cacheStatus)?.status).toBe('hit');
    expect(svc.counters.stored).toBe(stored);
    await svc.flush();
    const rows = await svc.store!.pool.query<{ n: string; hits: number }>(`SELECT count(*)::text AS n, max(hit_count) AS hits FROM semantic_cache WHERE prompt = 'Only once'`);
    expect(rows.rows[0]).toEqual({ n: '1', hits: 3 });
  });
});

describe('replay', () => {
  const answer: CachedAnswer = { v: 1, dialect: 'anthropic', text: 'Hello there, world.', finishReason: 'end_turn', usage: { inputTokens: 5, outputTokens: 4 }, model: 'claude' };
  it('deltas concatenate to the text exactly and never split a word', () => {
    const text = 'A  long\nanswer with   spaces, émojis 🎉 and words '.repeat(5);
    const d = textDeltas(text, 10);
    expect(d.join('')).toBe(text);
    expect(d.length).toBeGreaterThan(3);
  });
  it('maps the finish reason when replayed in the other dialect', () => {
    const o = JSON.parse(replayAnswer(answer, 'openai', { stream: false }).body);
    expect(o.choices[0].finish_reason).toBe('stop');
    expect(o.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
    const a = JSON.parse(replayAnswer({ ...answer, dialect: 'openai', finishReason: 'length' }, 'anthropic', { stream: false }).body);
    expect(a.stop_reason).toBe('max_tokens');
  });
  it('OpenAI SSE without include_usage has no usage chunk', () => {
    const events = new SseParser().push(Buffer.from(replayAnswer(answer, 'openai', { stream: true }).body));
    expect(events.some((e) => e.data !== '[DONE]' && 'usage' in JSON.parse(e.data))).toBe(false);
  });
});

describe('with the pii stage before it', () => {
  it('stores the answer of a redacted prompt only when the answer repeats no placeholder; reads raw bytes, never restored values', async () => {
    const pii = piiStage.create(piiOptionsSchema.parse({}), { log: createLogger('error', () => undefined), services: gen.services, catalog: { providers: {}, models: {}, routes: [] } });
    const p = pipe('tenant-pii', [pii]);
    const body = ask('Write a greeting for jane.doe@example.com', { stream: true });
    const stored = svc.counters.stored;
    const notStored = svc.counters.notStored['pii-placeholder'] ?? 0;
    // The model repeats the placeholder; pii restores it for the client; the cache must not keep it.
    const run = await runScript(p, { requestBody: body, responseHeaders: SSE_HEADERS, responseChunks: [openaiStream(['Hello ', '<EMAIL_1>', '!'])] });
    const sent = JSON.stringify(run.x.requestJson());
    expect(sent).not.toContain('jane.doe@example.com');
    const toClient = Buffer.concat(run.responseBody.map((o) => o.body ?? Buffer.alloc(0))).toString();
    expect(toClient).toContain('jane.doe@example.com'); // restored for the client…
    expect(svc.counters.stored).toBe(stored); // …and never stored
    expect(svc.counters.notStored['pii-placeholder']).toBe(notStored + 1);
    // An answer without placeholders to the same redacted prompt is stored and served to the next identical request.
    await missThenStore(p, ask('Write a greeting for jane.doe@example.com'), [openaiJson('Hello there!')]);
    expect(svc.counters.stored).toBe(stored + 1);
    const hit = await lookup(p, ask('Write a greeting for jane.doe@example.com'));
    expect(hit.x.get(cacheStatus)?.status).toBe('hit');
    await svc.flush();
    const rows = await svc.store!.pool.query<{ prompt: string }>(`SELECT prompt FROM semantic_cache WHERE prompt LIKE 'Write a greeting for%'`);
    expect(rows.rows.map((r) => r.prompt)).toEqual(['Write a greeting for <EMAIL_1>']);
  });
});

describe('options', () => {
  it('the example config loads with every stage checked', async () => {
    const cfg = await loadConfigFile(join(import.meta.dirname, '../../config/examples/semantic-cache.yaml'), { CACHE_DIR: '/tmp/x' }, [stageCheck(builtinStages)]);
    expect(cfg.pipeline.streamObserver).toBe(false);
    expect(JSON.stringify(cfg.pipeline.stages)).toContain('"dataDir":"/tmp/x"');
  });
  it('errors name their key; defaults are strict and documented', () => {
    const bad = semanticCacheOptionsSchema.safeParse({ threshhold: 0.8, threshold: 1.5, store: { kind: 'postgres' } });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['threshold', 'store.url']));
    const ok = semanticCacheOptionsSchema.parse({});
    expect(ok).toMatchObject({ threshold: 0.9, lookupBudgetMs: 50, store: { kind: 'embedded' }, embeddings: { kind: 'local' }, maxTemperature: 1, storeTruncated: false });
  });
});
