/**
 * The usage stage in process (test/helpers/harness.ts): golden usage for every provider shape,
 * JSON and SSE, streamed whole and at random chunk boundaries, from the fake providers' real
 * wire bytes and from hand-written answers carrying cache and reasoning counters; estimates
 * when the provider gives none; outcomes and contributions; dynamic metadata.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedAnswer, startFakeProvider, type FakeProvider } from '../fakes/index.js';
import { runScript, type Run } from '../helpers/harness.js';
import { stage } from '../helpers/harness.js';
import { cacheContribution, piiContribution, rateLimitContribution, routeContribution } from '../../extproc/usage/contributions.js';
import { randomSplit, usagePipeline } from './helpers.js';
import { pipelineOf } from '../helpers/harness.js';
import { parseRequestStage } from '../../extproc/stages/parseRequest.js';

type Kind = 'openai' | 'anthropic' | 'mistral';
const providers: Partial<Record<Kind, FakeProvider>> = {};
const usage = usagePipeline();

beforeAll(async () => {
  for (const k of ['openai', 'anthropic', 'mistral'] as const) providers[k] = await startFakeProvider({ kind: k, auth: false });
});
afterAll(async () => {
  for (const p of Object.values(providers)) await p?.close();
  await usage.close();
});

function bodyFor(kind: Kind, stream: boolean, includeUsage = true): Record<string, unknown> {
  const model = kind === 'openai' ? 'gpt-4o' : kind === 'anthropic' ? 'claude-opus-4-20250514' : 'mistral-large-latest';
  const messages = [{ role: 'user', content: 'Say something about the weather in Lisbon today, please.' }];
  const body: Record<string, unknown> = kind === 'anthropic' ? { model, max_tokens: 200, messages } : { model, messages };
  if (stream) {
    body['stream'] = true;
    if (kind === 'openai' && includeUsage) body['stream_options'] = { include_usage: true };
  }
  return body;
}

/** The fake provider's exact response bytes for `body`. */
async function wire(kind: Kind, body: Record<string, unknown>): Promise<{ contentType: string; bytes: Buffer }> {
  const path = kind === 'anthropic' ? '/v1/messages' : '/v1/chat/completions';
  const res = await fetch(`${providers[kind]!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return { contentType: res.headers.get('content-type') ?? '', bytes: Buffer.from(await res.arrayBuffer()) };
}

function recordOf(run: Run): Record<string, unknown> {
  const lines = run.logs.filter((l) => l['msg'] === 'usage');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

async function runWire(kind: Kind, body: Record<string, unknown>, w: { contentType: string; bytes: Buffer }, chunks: Buffer[], extra: Record<string, string> = {}): Promise<Run> {
  return runScript(usage.pipeline, {
    requestHeaders: { ':path': kind === 'anthropic' ? '/v1/messages' : '/v1/chat/completions', 'x-request-id': `r-${Math.random()}`, ...extra },
    requestBody: body,
    responseHeaders: { 'content-type': w.contentType },
    responseChunks: chunks,
  });
}

describe('golden usage from the fake providers\' wire bytes', () => {
  for (const kind of ['openai', 'anthropic', 'mistral'] as const) {
    for (const stream of [false, true]) {
      it(`${kind} ${stream ? 'SSE' : 'JSON'}: whole, and at 20 random chunkings`, async () => {
        const body = bodyFor(kind, stream);
        const exp = expectedAnswer(kind, body);
        const w = await wire(kind, body);
        const splits = [[w.bytes], ...Array.from({ length: 20 }, (_, s) => randomSplit(w.bytes, s + 1))];
        for (const chunks of splits) {
          const r = recordOf(await runWire(kind, body, w, chunks));
          expect(r).toMatchObject({ input_tokens: exp.inputTokens, output_tokens: exp.outputTokens, estimated: false, stream, outcome: 'completed', error_class: null });
          expect(r['served_model']).toBe(kind === 'openai' ? 'gpt-4o' : kind === 'anthropic' ? 'claude-opus-4' : 'mistral-large');
          expect(r['provider']).toBe(kind);
        }
      });
    }
  }

  it('the cost is the served model\'s price of those tokens, in integer micro-dollars', async () => {
    const body = bodyFor('anthropic', true);
    const exp = expectedAnswer('anthropic', body);
    const w = await wire('anthropic', body);
    const r = recordOf(await runWire('anthropic', body, w, randomSplit(w.bytes, 99)));
    // claude-opus-4: $15 in, $75 out per MTok → 15 µ$ per input token, 75 µ$ per output token.
    expect(r['cost_micros']).toBe(exp.inputTokens * 15 + exp.outputTokens * 75);
  });

  it('an OpenAI stream without include_usage is counted with the tokenizer and marked estimated', async () => {
    const body = bodyFor('openai', true, false);
    const exp = expectedAnswer('openai', body);
    const w = await wire('openai', body);
    const r = recordOf(await runWire('openai', body, w, randomSplit(w.bytes, 5)));
    expect(r['estimated']).toBe(true);
    // The fake counts words and punctuation; BPE is close but not equal: same order of magnitude.
    expect(r['output_tokens']).toBeGreaterThan(exp.outputTokens / 2);
    expect(r['output_tokens']).toBeLessThan(exp.outputTokens * 2);
    expect(r['input_tokens']).toBeGreaterThan(5);
  });
});

// Hand-written answers with every counter, as the providers document them.
const OPENAI_JSON = JSON.stringify({
  id: 'c1', object: 'chat.completion', model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 2000, completion_tokens: 300, total_tokens: 2300, prompt_tokens_details: { cached_tokens: 1024 }, completion_tokens_details: { reasoning_tokens: 128 } },
});
const OPENAI_SSE =
  'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}\n\n' +
  'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Olá — ça va? 你好"}}],"usage":null}\n\n' +
  'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n' +
  'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":2000,"completion_tokens":300,"total_tokens":2300,"prompt_tokens_details":{"cached_tokens":1024},"completion_tokens_details":{"reasoning_tokens":128}}}\n\n' +
  'data: [DONE]\n\n';
const ANTHROPIC_SSE =
  'event: message_start\ndata: {"type":"message_start","message":{"id":"m1","type":"message","role":"assistant","model":"claude-opus-4-20250514","content":[],"usage":{"input_tokens":50,"cache_creation_input_tokens":1000,"cache_read_input_tokens":3000,"output_tokens":1}}}\n\n' +
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n' +
  'event: ping\ndata: {"type": "ping"}\n\n' +
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Olá — 你好"}}\n\n' +
  'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n' +
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":400}}\n\n' +
  'event: message_stop\ndata: {"type":"message_stop"}\n\n';

describe('golden usage with cached, cache-write and reasoning tokens', () => {
  const cases = [
    { name: 'OpenAI JSON', path: '/v1/chat/completions', ct: 'application/json', bytes: OPENAI_JSON, model: 'gpt-4o', tokens: { input_tokens: 2000, output_tokens: 300, cached_input_tokens: 1024, cache_write_tokens: 0, reasoning_tokens: 128 },
      // gpt-4o: (2000-1024)·2.5 + 1024·1.25 + 300·10 = 2440 + 1280 + 3000 µ$
      cost: 6720 },
    { name: 'OpenAI SSE', path: '/v1/chat/completions', ct: 'text/event-stream', bytes: OPENAI_SSE, model: 'gpt-4o', tokens: { input_tokens: 2000, output_tokens: 300, cached_input_tokens: 1024, cache_write_tokens: 0, reasoning_tokens: 128 }, cost: 6720 },
    { name: 'Anthropic SSE (message_start + message_delta counted once)', path: '/v1/messages', ct: 'text/event-stream', bytes: ANTHROPIC_SSE, model: 'claude-opus-4', tokens: { input_tokens: 4050, output_tokens: 400, cached_input_tokens: 3000, cache_write_tokens: 1000, reasoning_tokens: 0 },
      // opus: 50·15 + 3000·1.5 + 1000·18.75 + 400·75 = 750 + 4500 + 18750 + 30000
      cost: 54_000 },
  ];
  for (const c of cases) {
    it(`${c.name}: whole and at random boundaries`, async () => {
      const bytes = Buffer.from(c.bytes);
      for (const chunks of [[bytes], ...Array.from({ length: 30 }, (_, s) => randomSplit(bytes, 100 + s, 25))]) {
        const run = await runScript(usage.pipeline, {
          requestHeaders: { ':path': c.path },
          requestBody: { model: c.model, messages: [{ role: 'user', content: 'x' }], stream: c.ct !== 'application/json' },
          responseHeaders: { 'content-type': c.ct },
          responseChunks: chunks,
        });
        const r = recordOf(run);
        expect(r).toMatchObject({ ...c.tokens, served_model: c.model, cost_micros: c.cost, estimated: false });
        // Dynamic metadata for Envoy's access log, on the last chunk of the main stream.
        const md = run.responseBody.at(-1)!.metadata.get('ai_gateway');
        expect(md).toMatchObject({ served_model: c.model, input_tokens: c.tokens.input_tokens, output_tokens: c.tokens.output_tokens, cost_micros: c.cost });
      }
    });
  }

  it('an Anthropic stream cut after message_start keeps its input and estimates the delivered output', async () => {
    const cut = ANTHROPIC_SSE.slice(0, ANTHROPIC_SSE.indexOf('event: content_block_stop'));
    const run = await runScript(usage.pipeline, {
      requestHeaders: { ':path': '/v1/messages' },
      requestBody: { model: 'claude-opus-4', max_tokens: 10, messages: [{ role: 'user', content: 'x' }], stream: true },
      responseHeaders: { 'content-type': 'text/event-stream' },
      responseChunks: [cut, ''],
    });
    const r = recordOf(run);
    expect(r).toMatchObject({ input_tokens: 4050, cached_input_tokens: 3000, estimated: true, error_class: 'truncated' });
    expect(r['output_tokens']).toBeGreaterThan(1);
  });
});

describe('outcomes and contributions', () => {
  it('reads route, PII counts, cache hit and rate-limit decision from their slots; a hit has no provider tokens', async () => {
    const contribute = stage('contribute', {
      requestHeaders(x, out) {
        x.set(routeContribution, { route: 'default-chain', model: 'claude-opus-4', provider: 'anthropic' });
        x.set(piiContribution, { EMAIL: 2, PHONE: 1 });
        x.set(rateLimitContribution, { decision: 'allow' });
        x.set(cacheContribution, { status: 'hit', model: 'gpt-4o', savedUsage: { inputTokens: 1000, outputTokens: 100 } });
        out.respond({ status: 200, headers: { 'content-type': 'application/json' }, body: '{}' });
      },
    });
    const u = usagePipeline();
    const p = pipelineOf([contribute, ...u.pipeline.stages]);
    const run = await runScript(p, { requestHeaders: { ':path': '/v1/chat/completions', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, requestBody: { model: 'smart', messages: [] } });
    await u.close();
    const r = recordOf(run);
    expect(r).toMatchObject({
      route: 'default-chain', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', cache: 'hit', input_tokens: 0, output_tokens: 0, cost_micros: 0,
      // 1000·2.5 + 100·10 at gpt-4o's price
      saved_micros: 3500, pii_EMAIL: 2, pii_PHONE: 1, rate_limit: 'allow', outcome: 'immediate', status: 200, error_class: null, attempts: 0, served_model: 'gpt-4o',
    });
  });

  it('maps a rate-limit rejection, an upstream error and a lost response to their error classes', async () => {
    const reject = stage('reject', {
      requestHeaders(x, out) {
        x.set(rateLimitContribution, { decision: 'reject', limit: 'tokens' });
        out.fail('RATE_LIMITED', 'slow down', { retryAfterSeconds: 1 });
      },
    });
    const u = usagePipeline();
    const limited = recordOf(await runScript(pipelineOf([reject, ...u.pipeline.stages]), { requestBody: { model: 'gpt-4o', messages: [] } }));
    expect(limited).toMatchObject({ error_class: 'rate_limited', status: 429, rate_limit: 'reject', outcome: 'immediate' });

    const upstream = recordOf(await runScript(u.pipeline, { requestBody: { model: 'gpt-4o', messages: [] }, responseHeaders: { ':status': '503', 'content-type': 'application/json' }, responseChunks: ['{"error":{"message":"overloaded"}}'] }));
    expect(upstream).toMatchObject({ error_class: 'upstream_server_error', status: 503, input_tokens: 0, cost_micros: 0, outcome: 'upstream-error' });

    // Envoy's own local reply (exhausted chain) skips ext_proc: request phases, then the stream ends.
    const lost = recordOf(await runScript(u.pipeline, { requestBody: { model: 'gpt-4o', messages: [] } }));
    expect(lost).toMatchObject({ error_class: 'no_response', outcome: 'no-response', attempts: 1 });
    await u.close();
  });

  it('takes the served model, provider and attempts from the attempt stage\'s ai_gateway metadata (a fallback)', async () => {
    const run = await runScript(usage.pipeline, {
      requestHeaders: { ':path': '/v1/chat/completions' },
      requestBody: { model: 'claude-opus-4', messages: [{ role: 'user', content: 'hi' }] },
      metadata: { ai_gateway: { served_model: 'gpt-4o', provider: 'openai', attempts: 2, fallback_path: 'claude-opus-4>gpt-4o' } },
      responseHeaders: { 'content-type': 'application/json' },
      responseChunks: [OPENAI_JSON],
    });
    expect(recordOf(run)).toMatchObject({ requested_model: 'claude-opus-4', served_model: 'gpt-4o', provider: 'openai', attempts: 2, fallback_path: 'claude-opus-4>gpt-4o', cost_micros: 6720 });
  });

  it('one record per request, for a body split into pieces', async () => {
    const run = await runScript(pipelineOf([parseRequestStage.create(undefined as never, {} as never), ...usage.pipeline.stages.slice(1)]), { requestBody: { model: 'gpt-4o', messages: [] }, responseHeaders: { 'content-type': 'application/json' }, responseChunks: ['{', '}'] });
    expect(run.logs.filter((l) => l['msg'] === 'usage')).toHaveLength(1);
  });
});
