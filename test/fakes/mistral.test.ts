// The Mistral fake: OpenAI-compatible enough for the openai SDK, with Mistral's own shapes.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countTokens, expectedAnswer, faults, parseSSE, startFakeProvider, type FakeProvider } from './index.js';

let p: FakeProvider;
let client: OpenAI;

beforeAll(async () => {
  p = await startFakeProvider({ kind: 'mistral' });
  client = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'mistral-test-key', maxRetries: 0 });
});
afterAll(async () => {
  await p.close();
});
beforeEach(() => {
  p.reset();
});

const body = { model: 'mistral-small-latest', messages: [{ role: 'user' as const, content: 'Say hi' }] };
const expectedText = 'This is a fake mistral reply to: Say hi';

describe('mistral fake', () => {
  it('answers a non-streamed request in Mistral shape', async () => {
    const res = await client.chat.completions.create(body);
    expect(res.id).toMatch(/^[0-9a-f]{32}$/);
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0]!.message.content).toBe(expectedText);
    expect(res.choices[0]!.finish_reason).toBe('stop');
    const exp = expectedAnswer('mistral', body);
    expect(res.usage).toEqual({
      prompt_tokens: exp.inputTokens,
      completion_tokens: countTokens(expectedText),
      total_tokens: exp.inputTokens + exp.outputTokens,
    });
    const raw = p.responses[0]!.json as { choices: Array<{ message: Record<string, unknown> }>; system_fingerprint?: unknown };
    expect(raw.choices[0]!.message).toEqual({ role: 'assistant', tool_calls: null, content: expectedText });
    expect(raw.system_fingerprint).toBeUndefined();
  });

  it('streams with usage on the final (finish_reason) chunk, then [DONE]', async () => {
    const stream = await client.chat.completions.create({ ...body, stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.map((c) => c.choices[0]!.delta.content ?? '').join('')).toBe(expectedText);
    const last = chunks.at(-1)!;
    expect(last.choices[0]!.finish_reason).toBe('stop');
    expect(last.usage).toMatchObject({ completion_tokens: countTokens(expectedText) });
    // usage only on the last chunk, and no separate usage-only chunk
    expect(chunks.slice(0, -1).every((c) => c.usage === undefined)).toBe(true);
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(parseSSE(p.responses[0]!.text).at(-1)!.data).toBe('[DONE]');
  });

  it('answers 429 with Mistral error body and retry-after', async () => {
    p.script(faults.rateLimited(2));
    const err = await client.chat.completions.create(body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.APIError>).headers!.get('retry-after')).toBe('2');
    expect(p.responses[0]!.json).toEqual({
      object: 'error',
      message: 'Rate limit exceeded',
      type: 'rate_limited',
      param: null,
      code: '1300',
    });
  });

  it('answers 401 {"message":"Unauthorized"} without a key', async () => {
    const res = await fetch(`${p.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ message: 'Unauthorized' });
  });

  it('serves /v1/embeddings with Mistral usage fields', async () => {
    const res = await client.embeddings.create({ model: 'mistral-embed', input: ['a b', 'c'], encoding_format: 'float' });
    expect(res.data).toHaveLength(2);
    expect(res.usage).toMatchObject({ prompt_tokens: 3, total_tokens: 3 });
    expect((p.responses[0]!.json as { id: string }).id).toMatch(/^[0-9a-f]{32}$/);
  });
});
