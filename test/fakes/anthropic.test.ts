// The Anthropic fake, driven by the official @anthropic-ai/sdk client (no gateway in between).
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countTokens, expectedAnswer, faults, parseSSE, startFakeProvider, type FakeProvider } from './index.js';

let p: FakeProvider;
let client: Anthropic;

beforeAll(async () => {
  p = await startFakeProvider({ kind: 'anthropic', auth: { apiKey: 'sk-ant-test' } });
  client = new Anthropic({ baseURL: p.url, apiKey: 'sk-ant-test', maxRetries: 0 });
});
afterAll(async () => {
  await p.close();
});
beforeEach(() => {
  p.reset();
});

const params = {
  model: 'claude-haiku-4-5',
  max_tokens: 256,
  system: 'You are terse.',
  messages: [{ role: 'user' as const, content: 'Name a prime number.' }],
};
const expectedText = 'This is a fake anthropic reply to: Name a prime number.';

describe('anthropic fake: messages', () => {
  it('answers a non-streamed request in the real shape', async () => {
    const msg = await client.messages.create(params);
    expect(msg.id).toMatch(/^msg_01[A-Za-z0-9]{22}$/);
    expect(msg.type).toBe('message');
    expect(msg.role).toBe('assistant');
    expect(msg.model).toBe('claude-haiku-4-5');
    expect(msg.content).toEqual([{ type: 'text', text: expectedText }]);
    expect(msg.stop_reason).toBe('end_turn');
    expect(msg.stop_sequence).toBeNull();
    const exp = expectedAnswer('anthropic', params);
    expect(msg.usage.input_tokens).toBe(exp.inputTokens);
    expect(msg.usage.output_tokens).toBe(countTokens(expectedText));
    expect(p.responses[0]!.headers['request-id']).toMatch(/^req_011C/);
  });

  it('streams the real event sequence and the SDK assembles the final message', async () => {
    const stream = client.messages.stream(params);
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const final = await stream.finalMessage();
    expect(texts.join('')).toBe(expectedText);
    expect(texts.length).toBeGreaterThan(3);
    expect(final.content).toHaveLength(1);
    expect(final.content[0]).toMatchObject({ type: 'text', text: expectedText });
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBe(countTokens(expectedText));
    expect(final.usage.input_tokens).toBe(expectedAnswer('anthropic', params).inputTokens);

    const events = parseSSE(p.responses[0]!.text).map((f) => f.event);
    expect(events[0]).toBe('message_start');
    expect(events[1]).toBe('content_block_start');
    expect(events[2]).toBe('ping');
    expect(events.slice(3, -3).every((e) => e === 'content_block_delta')).toBe(true);
    expect(events.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(p.responses[0]!.headers['content-type']).toMatch(/^text\/event-stream/);
  });

  it('streams with stream: true and yields typed events', async () => {
    const stream = await client.messages.create({ ...params, stream: true });
    const types: string[] = [];
    let text = '';
    let stop: string | null = null;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      if (ev.type === 'message_delta') stop = ev.delta.stop_reason;
    }
    expect(text).toBe(expectedText);
    expect(stop).toBe('end_turn');
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    expect(types).not.toContain('ping'); // the SDK skips pings
  });

  it('stops at max_tokens with stop_reason max_tokens', async () => {
    const msg = await client.messages.create({ ...params, max_tokens: 2 });
    expect(msg.content[0]).toMatchObject({ text: 'This is' });
    expect(msg.stop_reason).toBe('max_tokens');
    expect(msg.usage.output_tokens).toBe(2);
  });
});

describe('anthropic fake: errors', () => {
  it('a scripted 529 surfaces as OverloadedError with type overloaded_error', async () => {
    p.script(faults.overloaded());
    const err = await client.messages.create(params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.InternalServerError);
    expect((err as Error).constructor.name).toBe('OverloadedError');
    const e = err as InstanceType<typeof Anthropic.APIError>;
    expect(e.status).toBe(529);
    expect(e.type).toBe('overloaded_error');
    expect(e.error).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  });

  it('a scripted 429 surfaces as RateLimitError with retry-after', async () => {
    p.script(faults.rateLimited(3));
    const err = await client.messages.create(params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    const e = err as InstanceType<typeof Anthropic.RateLimitError>;
    expect(e.type).toBe('rate_limit_error');
    expect(e.headers.get('retry-after')).toBe('3');
  });

  it.each([
    [500, 'api_error'],
    [502, 'api_error'],
    [503, 'api_error'],
    [504, 'timeout_error'],
  ])('a scripted %i has error type %s', async (status, type) => {
    p.script(faults.status(status));
    const err = await client.messages.create(params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.InternalServerError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(status);
    expect((err as InstanceType<typeof Anthropic.APIError>).type).toBe(type);
  });

  it('an in-stream error event (overloaded mid-stream) makes the SDK stream throw', async () => {
    p.script(faults.streamError(4, { status: 529 }));
    const stream = client.messages.stream(params);
    const err = await stream.finalMessage().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).type).toBe('overloaded_error');
    const frames = parseSSE(p.responses[0]!.text);
    expect(frames.at(-1)!.event).toBe('error');
  });

  it('checks x-api-key and anthropic-version like the real API', async () => {
    const post = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${p.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(params),
      });
    const noKey = await post({ 'anthropic-version': '2023-06-01' });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: 'x-api-key header is required' } });

    const badKey = await post({ 'x-api-key': 'nope', 'anthropic-version': '2023-06-01' });
    expect(badKey.status).toBe(401);
    expect(await badKey.json()).toMatchObject({ error: { type: 'authentication_error', message: 'invalid x-api-key' } });

    const noVersion = await post({ 'x-api-key': 'sk-ant-test' });
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({ error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' } });

    const ok = await post({ 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' });
    expect(ok.status).toBe(200);

    const wrongSdk = new Anthropic({ baseURL: p.url, apiKey: 'wrong', maxRetries: 0 });
    await expect(wrongSdk.messages.create(params)).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
  });

  it('the header check can be turned off', async () => {
    const open = await startFakeProvider({ kind: 'anthropic', auth: false });
    try {
      const res = await fetch(`${open.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(params),
      });
      expect(res.status).toBe(200);
    } finally {
      await open.close();
    }
    const lenient = await startFakeProvider({ kind: 'anthropic', auth: { requireVersion: false } });
    try {
      const res = await fetch(`${lenient.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'anything' },
        body: JSON.stringify(params),
      });
      expect(res.status).toBe(200);
    } finally {
      await lenient.close();
    }
  });

  it('validates required fields (max_tokens)', async () => {
    const { max_tokens: _m, ...noMax } = params;
    const res = await fetch(`${p.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(noMax),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });
  });
});

describe('anthropic fake: recording', () => {
  it('records the SDK request headers and body', async () => {
    await client.messages.create(params);
    const r = p.requests[0]!;
    expect(r.path).toBe('/v1/messages');
    // This SDK version sends the key as `Authorization: Bearer`; the fake accepts that or x-api-key.
    expect(r.headers['x-api-key'] ?? r.headers.authorization).toMatch(/^(Bearer )?sk-ant-test$/);
    expect(r.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(r.json).toMatchObject({ model: params.model, system: params.system, messages: params.messages });
  });
});
