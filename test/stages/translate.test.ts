/**
 * The `translate` stage in process (attempt pipeline of a real config, harness): each try is
 * rewritten for the step named by the chosen host's metadata, with only carried metadata from
 * the router (as on another replica); answers come back in the client's dialect; failures cool
 * the step for the route stage; a stream that stops early ends with an error event.
 */
import { describe, expect, it } from 'vitest';
import { ServiceRegistry } from '../../extproc/pipeline/services.js';
import { SseParser } from '../../extproc/providers/index.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { runScript, type Run, type Script } from '../helpers/harness.js';
import { hostAttributes, KEYS, pipelinesOf, routingConfig } from '../e2e/routingHelpers.js';
import { sseData, sseEvent } from '../fakes/index.js';

const config = routingConfig();
const messages = [{ role: 'user', content: 'hello there' }];
const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

const carryOpenAI = (extra: Record<string, unknown> = {}) => ({ ai_gateway: { carry_route: { route: 'main', start: 0, dialect: 'openai', stream: false, includeUsage: false, requested: null, ...extra } } });
const carryAnthropic = (extra: Record<string, unknown> = {}) => ({ ai_gateway: { carry_route: { route: 'main', start: 0, dialect: 'anthropic', stream: false, includeUsage: false, requested: null, ...extra } } });

const opus = hostAttributes('main', 0, 'claude-opus-4', 'anthropic');
const gpt = hostAttributes('main', 1, 'gpt-4o', 'openai');
const mistral = hostAttributes('main', 3, 'mistral-large', 'mistral');

function attempt(script: Script, pipelines = pipelinesOf(config)): Promise<Run> {
  return runScript(pipelines.attempt, { role: 'attempt', ...script });
}

const sent = (run: Run) => JSON.parse(run.requestBody!.body!.toString()) as Record<string, unknown>;
const headersOf = (run: Run) => Object.fromEntries(run.requestBody!.setHeaders);
const events = (text: string) => new SseParser().push(Buffer.from(text));

describe('translate stage: the request of each try', () => {
  it('OpenAI client, Anthropic step: Anthropic body with the upstream model id, its path and key, the client key gone', async () => {
    const run = await attempt({
      requestHeaders: { authorization: 'Bearer client-key' },
      requestBody: { model: 'claude-opus-4', messages: [{ role: 'system', content: 'be brief' }, ...messages], tools, tool_choice: 'auto' },
      metadata: carryOpenAI(),
      attributes: opus,
    });
    expect(sent(run)).toMatchObject({ model: 'claude-opus-4-20250514', system: 'be brief', max_tokens: 4096, tools: [{ name: 'get_weather' }] });
    expect(headersOf(run)).toMatchObject({ ':path': '/v1/messages', 'x-api-key': KEYS.anthropic, 'anthropic-version': '2023-06-01', 'content-length': String(run.requestBody!.body!.length) });
    expect(run.requestBody!.removeHeaders.has('authorization')).toBe(true);
    expect(run.requestBody!.metadata.get('ai_gateway')).toMatchObject({ served_model: 'claude-opus-4', served_step: 0, provider: 'anthropic' });
  });

  it('Anthropic client, OpenAI step, streamed: OpenAI body asking for usage, bearer key, no Anthropic headers', async () => {
    const run = await attempt({
      requestHeaders: { ':path': '/v1/messages', 'x-api-key': 'client-key', 'anthropic-version': '2023-06-01', 'anthropic-beta': 'x' },
      requestBody: { model: 'claude-opus-4', max_tokens: 100, system: 'be brief', messages, stream: true },
      metadata: carryAnthropic({ stream: true }),
      attributes: gpt,
    });
    expect(sent(run)).toMatchObject({ model: 'gpt-4o', messages: [{ role: 'system', content: 'be brief' }, ...messages], max_completion_tokens: 100, stream: true, stream_options: { include_usage: true } });
    expect(headersOf(run)).toMatchObject({ ':path': '/v1/chat/completions', authorization: `Bearer ${KEYS.openai}` });
    for (const h of ['x-api-key', 'anthropic-version', 'anthropic-beta']) expect(run.requestBody!.removeHeaders.has(h)).toBe(true);
  });

  it('a later try of the same request: the path an earlier try rewrote does not change the client dialect (carried)', async () => {
    const run = await attempt({ requestHeaders: { ':path': '/v1/messages' }, requestBody: { model: 'claude-opus-4', messages }, metadata: carryOpenAI(), attributes: gpt });
    expect(sent(run)).toMatchObject({ model: 'gpt-4o', messages });
    expect(headersOf(run)[':path']).toBe('/v1/chat/completions');
  });

  it('OpenAI client, Mistral step: Mistral’s adaptation (max_tokens, no stream_options) and its key', async () => {
    const run = await attempt({ requestBody: { model: 'x', messages, max_completion_tokens: 50, stream: true, stream_options: { include_usage: true } }, metadata: carryOpenAI({ stream: true }), attributes: mistral });
    const body = sent(run);
    expect(body).toMatchObject({ model: 'mistral-large-latest', max_tokens: 50, stream: true });
    expect(body['stream_options']).toBeUndefined();
    expect(headersOf(run)['authorization']).toBe(`Bearer ${KEYS.mistral}`);
  });

  it('a request the step cannot express: 400 in the client’s dialect, not a silent change', async () => {
    const run = await attempt({ requestBody: { model: 'x', messages, n: 3 }, metadata: carryOpenAI(), attributes: opus });
    expect(run.reply?.status).toBe(400);
    expect(JSON.parse(String(run.reply!.body)).error).toMatchObject({ type: 'invalid_request_error', param: 'n' });
  });

  it('a host this config does not know: the try passes unchanged', async () => {
    const run = await attempt({ requestBody: { model: 'x', messages }, metadata: carryOpenAI(), attributes: hostAttributes('gone', 0, 'gpt-9', 'openai') });
    expect(run.requestBody!.isEmpty).toBe(true);
    expect(run.logs.some((l) => l['msg'] === 'attempt host names no step of this config; request passed unchanged')).toBe(true);
  });
});

describe('translate stage: the answer', () => {
  it('Anthropic JSON → OpenAI JSON for an OpenAI client, the stale content-length removed', async () => {
    const answer = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-opus-4-20250514', content: [{ type: 'text', text: 'Hi!' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }], stop_reason: 'tool_use', stop_sequence: null, usage: { input_tokens: 10, output_tokens: 5 } };
    const run = await attempt({ requestBody: { model: 'x', messages, tools }, metadata: carryOpenAI(), attributes: opus, responseHeaders: { 'content-type': 'application/json' }, responseChunks: [JSON.stringify(answer)] });
    const out = run.responseBody[0]!;
    const body = JSON.parse(out.body!.toString());
    expect(body).toMatchObject({ object: 'chat.completion', choices: [{ finish_reason: 'tool_calls', message: { content: 'Hi!', tool_calls: [{ id: 'toolu_1', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] } }], usage: { prompt_tokens: 10, completion_tokens: 5 } });
    expect(out.removeHeaders.has('content-length')).toBe(true);
  });

  it('OpenAI SSE → Anthropic SSE chunk by chunk, however the bytes are cut', async () => {
    const chunks = [
      sseData({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }),
      sseData({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'Hel' }, finish_reason: null }] }),
      sseData({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'lo' }, finish_reason: 'stop' }] }),
      sseData({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }),
      'data: [DONE]\n\n',
    ].join('');
    const cut = [chunks.slice(0, 37), chunks.slice(37, 200), chunks.slice(200, 201), chunks.slice(201)];
    const run = await attempt({ requestHeaders: { ':path': '/v1/messages' }, requestBody: { model: 'x', max_tokens: 10, messages, stream: true }, metadata: carryAnthropic({ stream: true }), attributes: gpt, responseHeaders: { 'content-type': 'text/event-stream' }, responseChunks: [...cut, ''] });
    const text = run.responseBody.map((o) => o.body?.toString() ?? '').join('');
    const names = events(text).map((e) => e.event);
    expect(names).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(text).toContain('"output_tokens":2');
  });

  it('a translated stream the provider stopped early ends with an error event in the client dialect', async () => {
    const chunks = [sseEvent('message_start', { type: 'message_start', message: { id: 'm', type: 'message', role: 'assistant', model: 'claude', content: [], stop_reason: null, usage: { input_tokens: 3, output_tokens: 0 } } }), sseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }), sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } })];
    const run = await attempt({ requestBody: { model: 'x', messages, stream: true }, metadata: carryOpenAI({ stream: true }), attributes: opus, responseHeaders: { 'content-type': 'text/event-stream' }, responseChunks: [...chunks, ''] });
    const text = run.responseBody.map((o) => o.body?.toString() ?? '').join('');
    const last = events(text).at(-1)!;
    expect(JSON.parse(last.data)).toMatchObject({ error: { message: expect.stringContaining('before the answer was complete') } });
    expect(text).not.toContain('[DONE]');
  });

  it('a same-dialect stream is passed byte for byte, and closed with an error event when it stops early', async () => {
    const whole = [sseData({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null }] })];
    const run = await attempt({ requestBody: { model: 'x', messages, stream: true }, metadata: carryOpenAI({ stream: true }), attributes: gpt, responseHeaders: { 'content-type': 'text/event-stream' }, responseChunks: [...whole, ''] });
    expect(run.responseBody[0]!.body).toBeUndefined();
    expect(run.responseBody[1]!.body!.toString()).toMatch(/^data: \{"error":\{"message":"the provider ended the stream/);
    const complete = await attempt({ requestBody: { model: 'x', messages, stream: true }, metadata: carryOpenAI({ stream: true }), attributes: gpt, responseHeaders: { 'content-type': 'text/event-stream' }, responseChunks: [...whole, 'data: [DONE]\n\n', ''] });
    expect(complete.responseBody.every((o) => o.body === undefined)).toBe(true);
  });

  it('an OpenAI client streaming without include_usage: its stream_options stay its own (no usage chunk it did not ask for)', async () => {
    const run = await attempt({ requestBody: { model: 'x', messages, stream: true }, metadata: carryOpenAI({ stream: true }), attributes: gpt });
    const sent = JSON.parse(run.requestBody!.body!.toString()) as Record<string, unknown>;
    expect(sent['stream']).toBe(true);
    expect(sent['stream_options']).toBeUndefined();
    const asked = await attempt({ requestBody: { model: 'x', messages, stream: true, stream_options: { include_usage: true } }, metadata: carryOpenAI({ stream: true, includeUsage: true }), attributes: gpt });
    expect(JSON.parse(asked.requestBody!.body!.toString())).toMatchObject({ stream_options: { include_usage: true } });
  });

  it('a same-dialect JSON answer is not read at all', async () => {
    const run = await attempt({ requestBody: { model: 'x', messages }, metadata: carryOpenAI(), attributes: gpt, responseHeaders: { 'content-type': 'application/json' }, responseChunks: ['{"id":"x"}'] });
    expect(run.x.responseBodyRequested).toBe(false);
  });

  it('an error answer is translated to the client dialect and cools the step for the route stage (429 for its retry-after)', async () => {
    const registry = new ServiceRegistry(createLogger('error'), 0);
    const pipelines = pipelinesOf(config, registry);
    const err = { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } };
    const run = await attempt({ requestBody: { model: 'x', messages }, metadata: carryOpenAI(), attributes: opus, responseHeaders: { ':status': '429', 'content-type': 'application/json', 'retry-after': '30' }, responseChunks: [JSON.stringify(err)] }, pipelines);
    expect(JSON.parse(run.responseBody[0]!.body!.toString())).toMatchObject({ error: { message: 'slow down' } });
    // The next request on this replica starts after the cooled step.
    const next = await runScript(pipelines.router, { requestBody: { model: 'claude-opus-4', messages } });
    expect(next.requestBody!.setHeaders.get('x-gateway-cluster')).toBe('chain_main_from_1');
  });

  it('a try that got no response at all (reset, connect failure, per-try timeout) cools the step', async () => {
    const registry = new ServiceRegistry(createLogger('error'), 0);
    const pipelines = pipelinesOf(config, registry);
    const run = await attempt({ requestBody: { model: 'x', messages }, metadata: carryOpenAI(), attributes: opus, closeReason: 'cancelled' }, pipelines);
    expect(run.outcome.kind).toBe('no-response');
    const next = await runScript(pipelines.router, { requestBody: { model: 'claude-opus-4', messages } });
    expect(next.requestBody!.setHeaders.get('x-gateway-cluster')).toBe('chain_main_from_1');
  });

  it('a 400 does not cool the step', async () => {
    const registry = new ServiceRegistry(createLogger('error'), 0);
    const pipelines = pipelinesOf(config, registry);
    await attempt({ requestBody: { model: 'x', messages }, metadata: carryOpenAI(), attributes: opus, responseHeaders: { ':status': '400', 'content-type': 'application/json' }, responseChunks: ['{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}'] }, pipelines);
    const next = await runScript(pipelines.router, { requestBody: { model: 'claude-opus-4', messages } });
    expect(next.requestBody!.setHeaders.get('x-gateway-cluster')).toBe('llm_chain');
  });
});
