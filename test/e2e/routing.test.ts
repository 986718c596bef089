/**
 * Routing end to end: the official SDKs → the Envoy stand-in running the bootstrap RENDERED from
 * the gateway config → the gateway (route + translate) → fake providers. An OpenAI client served
 * by Anthropic and an Anthropic client served by OpenAI, streamed and not, with tools; the
 * response headers saying what served; /v1/models with both SDKs; bad input.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KEYS, routingConfigRaw, startRoutingE2E, type RoutingE2E } from './routingHelpers.js';

const tools = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];

let e: RoutingE2E;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  e = await startRoutingE2E(routingConfigRaw());
  openai = new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-client-openai', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: e.envoy.url, apiKey: 'sk-client-anthropic', maxRetries: 0 });
});
afterAll(() => e.close());
beforeEach(() => {
  for (const f of Object.values(e.fakes)) f.reset();
});

describe('an OpenAI client served by Anthropic', () => {
  it('non-streaming, with tools: OpenAI JSON back, the model that served in x-gateway-model', async () => {
    e.fakes.anthropic.script({ body: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-opus-4-20250514', content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }], stop_reason: 'tool_use', stop_sequence: null, usage: { input_tokens: 12, output_tokens: 7 } } });
    const { data, response } = await openai.chat.completions.create({ model: 'claude-opus-4', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools }).withResponse();
    expect(data.choices[0]!.finish_reason).toBe('tool_calls');
    expect(data.choices[0]!.message.tool_calls![0]).toMatchObject({ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect(data.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 7 });
    expect(response.headers.get('x-gateway-route')).toBe('main');
    expect(response.headers.get('x-gateway-model')).toBe('claude-opus-4');
    expect(response.headers.get('x-gateway-attempts')).toBe('1');
    const req = e.fakes.anthropic.requests[0]!;
    expect(req.path).toBe('/v1/messages');
    expect(req.json).toMatchObject({ model: 'claude-opus-4-20250514', tools: [{ name: 'get_weather', input_schema: { type: 'object' } }] });
    expect(req.headers['x-api-key']).toBe(KEYS.anthropic);
    expect(req.headers['authorization']).toBeUndefined(); // the client's key never reached Anthropic
  });

  it('streaming: OpenAI chunks back, text and usage complete', async () => {
    const stream = await openai.chat.completions.create({ model: 'claude-opus-4', messages: [{ role: 'user', content: 'Say hello' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      finish ??= c.choices[0]?.finish_reason;
      if (c.usage) usage = c.usage;
    }
    expect(text).toContain('fake anthropic reply to: Say hello');
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('streaming with tools: tool-call argument deltas reassemble', async () => {
    const frames = [
      ['message_start', { type: 'message_start', message: { id: 'msg_2', type: 'message', role: 'assistant', model: 'claude-opus-4-20250514', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, output_tokens: 1 } } }],
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: {} } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"city":' } }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '"Oslo"}' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 6 } }],
      ['message_stop', { type: 'message_stop' }],
    ] as const;
    e.fakes.anthropic.script({ contentType: 'text/event-stream', chunks: frames.map(([ev, d]) => `event: ${ev}\ndata: ${JSON.stringify(d)}\n\n`) });
    const stream = openai.chat.completions.stream({ model: 'claude-opus-4', messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools, stream: true });
    const done = await stream.finalChatCompletion();
    expect(done.choices[0]!.finish_reason).toBe('tool_calls');
    expect(done.choices[0]!.message.tool_calls![0]!.function).toEqual({ name: 'get_weather', arguments: '{"city":"Oslo"}' });
  });
});

describe('an Anthropic client served by OpenAI', () => {
  it('non-streaming, with tools: Anthropic JSON back', async () => {
    e.fakes.openai.script({ body: { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4o', choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] }, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 } } });
    const { data, response } = await anthropic.messages
      .create({ model: 'gpt-4o', max_tokens: 200, messages: [{ role: 'user', content: 'Weather in Rome?' }], tools: [{ name: 'get_weather', description: 'Weather of a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }] }, { headers: { 'x-caller-id': 'spiffe://cluster.local/ns/shop/sa/checkout' } })
      .withResponse();
    expect(data.stop_reason).toBe('tool_use');
    expect(data.content).toEqual([{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Rome' } }]);
    expect(data.usage).toMatchObject({ input_tokens: 20, output_tokens: 8 });
    expect(response.headers.get('x-gateway-route')).toBe('checkout');
    expect(response.headers.get('x-gateway-model')).toBe('gpt-4o');
    const req = e.fakes.openai.requests[0]!;
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers['authorization']).toBe(`Bearer ${KEYS.openai}`);
    expect(req.headers['x-api-key']).toBeUndefined();
    expect(req.json).toMatchObject({ model: 'gpt-4o', max_completion_tokens: 200, tools: [{ type: 'function', function: { name: 'get_weather' } }] });
  });

  it('streaming: Anthropic events back, the SDK’s final message complete', async () => {
    const stream = anthropic.messages.stream({ model: 'gpt-4o', max_tokens: 200, messages: [{ role: 'user', content: 'Say hi' }] }, { headers: { 'x-caller-id': 'spiffe://cluster.local/ns/shop/sa/checkout' } });
    const msg = await stream.finalMessage();
    expect(msg.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('fake openai reply to: Say hi') });
    expect(msg.stop_reason).toBe('end_turn');
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
    expect(e.fakes.openai.requests[0]!.json).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });
});

describe('an Anthropic client served by OpenAI, streamed with tools', () => {
  it('tool-call argument deltas become input_json_delta events the SDK reassembles', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    e.fakes.openai.script({
      contentType: 'text/event-stream',
      chunks: [
        chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'get_weather', arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '"Lima"}' } }] }),
        chunk({}, 'tool_calls'),
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [], usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 } })}\n\n`,
        'data: [DONE]\n\n',
      ],
    });
    const stream = anthropic.messages.stream(
      { model: 'gpt-4o', max_tokens: 100, messages: [{ role: 'user', content: 'Weather in Lima?' }], tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }] },
      { headers: { 'x-caller-id': 'spiffe://cluster.local/ns/shop/sa/checkout' } },
    );
    const msg = await stream.finalMessage();
    expect(msg.stop_reason).toBe('tool_use');
    expect(msg.content).toEqual([{ type: 'tool_use', id: 'call_9', name: 'get_weather', input: { city: 'Lima' } }]);
    expect(msg.usage).toMatchObject({ input_tokens: 11, output_tokens: 4 });
  });
});

describe('models and bad input', () => {
  it('client.models.list() with both SDKs', async () => {
    const o = [];
    for await (const m of openai.models.list()) o.push(m.id);
    expect(o).toContain('claude-opus-4');
    expect(o).toContain('gpt-4o');
    const a = [];
    for await (const m of anthropic.models.list()) a.push(m.id);
    expect(a).toEqual(o);
    const one = await openai.models.retrieve('smart');
    expect(one.id).toBe('claude-opus-4');
  });

  it('an unknown model: the SDKs raise NotFoundError; nothing reaches a provider', async () => {
    await expect(openai.chat.completions.create({ model: 'gpt-5o', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(anthropic.messages.create({ model: 'gpt-5o', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    expect(Object.values(e.fakes).every((f) => f.requests.length === 0)).toBe(true);
  });

  it('a model of the wrong type: 400', async () => {
    const err = await openai.chat.completions.create({ model: 42 as unknown as string, messages: [{ role: 'user', content: 'x' }] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('"model" must be a string');
  });

  it('an unserved /v1/ path: 404 in the client dialect', async () => {
    const r = await fetch(`${e.envoy.url}/v1/assistants`, { headers: { authorization: 'Bearer x' } });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('unknown_url');
  });
});
