// The OpenAI fake, driven by the official openai SDK (no gateway in between).
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countTokens, expectedAnswer, faults, parseSSE, startFakeProvider, type FakeProvider } from './index.js';

let p: FakeProvider;
let client: OpenAI;

beforeAll(async () => {
  p = await startFakeProvider({ kind: 'openai', auth: { apiKey: 'sk-test-openai' } });
  client = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'sk-test-openai', maxRetries: 0 });
});
afterAll(async () => {
  await p.close();
});
beforeEach(() => {
  p.reset();
});

const question = [{ role: 'user' as const, content: 'What is the capital of France?' }];

describe('openai fake: chat completions', () => {
  it('answers a non-streamed request in the real shape', async () => {
    const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question });
    expect(res.object).toBe('chat.completion');
    expect(res.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(res.model).toBe('gpt-4o-mini');
    expect(typeof res.created).toBe('number');
    expect(res.system_fingerprint).toMatch(/^fp_/);
    expect(res.choices).toHaveLength(1);
    const choice = res.choices[0]!;
    expect(choice.index).toBe(0);
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toBe('This is a fake openai reply to: What is the capital of France?');
    expect(choice.finish_reason).toBe('stop');
    expect(choice.logprobs).toBeNull();
    const expected = expectedAnswer('openai', { model: 'gpt-4o-mini', messages: question });
    expect(res.usage).toMatchObject({
      prompt_tokens: expected.inputTokens,
      completion_tokens: countTokens(choice.message.content!),
      total_tokens: expected.inputTokens + expected.outputTokens,
    });
    const raw = p.responses[0]!;
    expect(raw.status).toBe(200);
    expect(raw.headers['content-type']).toBe('application/json');
    expect(raw.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it('streams chunks with role first, content deltas, finish_reason, a usage chunk and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: question,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);

    expect(chunks.length).toBeGreaterThan(4);
    for (const c of chunks) expect(c.object).toBe('chat.completion.chunk');
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe('This is a fake openai reply to: What is the capital of France?');
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish).toHaveLength(1);
    expect(finish[0]!.choices[0]!.finish_reason).toBe('stop');
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: countTokens(text) });
    expect(last.usage!.total_tokens).toBe(last.usage!.prompt_tokens + last.usage!.completion_tokens);
    // every chunk before the usage chunk carries usage: null, as the real API does
    for (const c of chunks.slice(0, -1)) expect(c.usage).toBeNull();

    const rec = p.responses[0]!;
    expect(rec.headers['content-type']).toMatch(/^text\/event-stream/);
    const frames = parseSSE(rec.text);
    expect(frames.at(-1)!.data).toBe('[DONE]');
    expect(rec.chunks.length).toBe(frames.length); // one write per SSE frame
  });

  it('omits the usage chunk when include_usage is not set', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question, stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(chunks.every((c) => c.usage === undefined)).toBe(true);
  });

  it('uses the SDK stream helper (finalChatCompletion)', async () => {
    const runner = client.chat.completions.stream({
      model: 'gpt-4o-mini',
      messages: question,
      stream_options: { include_usage: true },
    });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]!.message.content).toBe('This is a fake openai reply to: What is the capital of France?');
    expect(final.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('cuts the reply at max_tokens with finish_reason length', async () => {
    const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question, max_tokens: 3 });
    expect(res.choices[0]!.message.content).toBe('This is a');
    expect(res.choices[0]!.finish_reason).toBe('length');
    expect(res.usage!.completion_tokens).toBe(3);
  });

  it('takes reply text, finish reason, model and usage from a scripted behaviour', async () => {
    p.script({ text: 'Paris.', model: 'gpt-4o-2024-08-06', usage: { inputTokens: 100 } });
    const res = await client.chat.completions.create({ model: 'gpt-4o', messages: question });
    expect(res.choices[0]!.message.content).toBe('Paris.');
    expect(res.model).toBe('gpt-4o-2024-08-06');
    expect(res.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 2, total_tokens: 102 });
  });
});

describe('openai fake: errors', () => {
  it('a scripted 429 surfaces as RateLimitError with retry-after', async () => {
    p.script(faults.rateLimited(7));
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.type).toBe('requests');
    expect(e.code).toBe('rate_limit_exceeded');
    expect(e.headers.get('retry-after')).toBe('7');
    expect(e.message).toMatch(/Rate limit reached/);
    // the next request is normal again
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: question })).resolves.toBeTruthy();
  });

  it.each([500, 502, 503, 504])('a scripted %i surfaces as InternalServerError with a server_error body', async (status) => {
    p.script(faults.status(status));
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe('server_error');
    const body = p.responses[0]!.json as { error: Record<string, unknown> };
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  });

  it('rejects a wrong key with 401 invalid_api_key and a missing one with 401', async () => {
    const wrong = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'sk-wrong-key-123456', maxRetries: 0 });
    const err = await wrong.chat.completions.create({ model: 'gpt-4o-mini', messages: question }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('invalid_api_key');

    const res = await fetch(`${p.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: question }),
    });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/You didn't provide an API key/);
  });

  it('validates the request like the API (400 for missing messages, bad JSON; 404 for unknown paths)', async () => {
    const post = (path: string, body: string): Promise<Response> =>
      fetch(`${p.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test-openai' },
        body,
      });
    const missing = await post('/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini' }));
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { param: string } }).error.param).toBe('messages');
    const bad = await post('/v1/chat/completions', '{not json');
    expect(bad.status).toBe(400);
    const unknown = await post('/v1/nope', '{}');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe('Invalid URL (POST /v1/nope)');
  });

  it('an in-stream error event makes the SDK stream throw', async () => {
    p.script(faults.streamError(3, { status: 500, message: 'boom mid-stream' }));
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: question, stream: true });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toMatch(/boom mid-stream/);
    expect(seen).toHaveLength(3);
  });
});

describe('openai fake: recording', () => {
  it('records method, path, headers, raw body and parsed JSON', async () => {
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'héllo ✓' }] });
    expect(p.requests).toHaveLength(1);
    const r = p.requests[0]!;
    expect(r.method).toBe('POST');
    expect(r.path).toBe('/v1/chat/completions');
    expect(r.headers.authorization).toBe('Bearer sk-test-openai');
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(Buffer.isBuffer(r.body)).toBe(true);
    expect(r.text).toBe(r.body.toString('utf8'));
    expect(r.json).toMatchObject({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'héllo ✓' }] });
  });

  it('records exactly the bytes the client received', async () => {
    const res = await fetch(`${p.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test-openai' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: question, stream: true }),
    });
    const received = Buffer.from(await res.arrayBuffer());
    await p.idle();
    expect(p.responses[0]!.outcome).toBe('complete');
    expect(received.equals(p.responses[0]!.body)).toBe(true);
  });
});
