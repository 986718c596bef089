/**
 * The official OpenAI and Anthropic SDKs through the Envoy stand-in (shipped envoy.yaml) and the
 * gateway with the pass-through pipeline: what the client receives is byte-identical to what the
 * provider sent, and a streamed answer reaches the client chunk by chunk — its first events
 * arrive while the provider is still holding the rest.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bytesOf, recordingFetch, startE2E, type E2E, type ReceivedBody } from './helpers.js';

const messages = [{ role: 'user' as const, content: 'Say hello to the gateway' }];

describe.each(['openai', 'mistral'] as const)('%s chat completions through Envoy + gateway (pass-through)', (kind) => {
  let e: E2E;
  let received: ReceivedBody[];
  let client: OpenAI;
  beforeAll(async () => {
    e = await startE2E(kind);
  });
  afterAll(() => e.close());
  beforeEach(() => {
    e.provider.reset();
    received = [];
    client = new OpenAI({ baseURL: `${e.envoy.url}/v1`, apiKey: 'sk-test', maxRetries: 0, fetch: recordingFetch(received) });
  });

  it('non-streaming: the SDK parses the answer and the bytes are the provider’s', async () => {
    const res = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(res.choices[0]!.message.content).toContain('Say hello to the gateway');
    await received[0]!.done;
    expect(bytesOf(received[0]!.chunks).equals(bytesOf(e.provider.responses[0]!.chunks))).toBe(true);
    expect(e.provider.requests[0]!.json).toMatchObject({ model: 'gpt-4o', messages });
  });

  it('streaming: events reach the client before the provider has finished, and the bytes are identical', async () => {
    e.provider.script({ holdAfterChunks: 2 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next(); // arrives while the provider holds the rest
    expect(first.done).toBe(false);
    expect(e.provider.responses[0]!.outcome).toBe('pending'); // provider not finished
    e.provider.release();
    let text = '';
    let usage: unknown;
    for (let r = first; !r.done; r = await iterator.next()) {
      text += r.value.choices[0]?.delta?.content ?? '';
      if (r.value.usage) usage = r.value.usage;
    }
    expect(text).toContain('Say hello to the gateway');
    expect(usage).toBeDefined();
    await received[0]!.done;
    expect(bytesOf(received[0]!.chunks).toString()).toBe(bytesOf(e.provider.responses[0]!.chunks).toString());
    expect(received[0]!.chunks.length).toBeGreaterThan(1); // not buffered into one piece
  });

  it('a provider error that is not retriable passes through with its status and body', async () => {
    e.provider.script({ error: { status: 400, message: 'bad temperature', param: 'temperature' } });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    await received[0]!.done;
    expect(bytesOf(received[0]!.chunks).toString()).toContain('bad temperature');
    expect(bytesOf(received[0]!.chunks).equals(bytesOf(e.provider.responses[0]!.chunks))).toBe(true);
    expect(e.provider.requests).toHaveLength(1);
  });

  it('429 on every attempt: Envoy retries along the chain (shipped retry policy), then the client gets the 429', async () => {
    e.provider.script(...[1, 2, 3, 4].map(() => ({ error: { status: 429, retryAfter: 3 } })));
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')).toBe('3');
    expect(e.provider.requests).toHaveLength(4); // the default chain's four steps (num_retries: 3)
  });
});

describe('anthropic messages through Envoy + gateway (pass-through)', () => {
  let e: E2E;
  let received: ReceivedBody[];
  let client: Anthropic;
  beforeAll(async () => {
    e = await startE2E('anthropic');
  });
  afterAll(() => e.close());
  beforeEach(() => {
    e.provider.reset();
    received = [];
    client = new Anthropic({ baseURL: e.envoy.url, apiKey: 'sk-ant-test', maxRetries: 0, fetch: recordingFetch(received) });
  });

  it('non-streaming: parsed by the SDK, byte-identical', async () => {
    const msg = await client.messages.create({ model: 'claude-sonnet-4', max_tokens: 200, messages });
    expect(msg.content[0]).toMatchObject({ type: 'text' });
    await received[0]!.done;
    expect(bytesOf(received[0]!.chunks).equals(bytesOf(e.provider.responses[0]!.chunks))).toBe(true);
  });

  it('streaming: first events before the provider finished, then the final message; bytes identical', async () => {
    e.provider.script({ holdAfterChunks: 3 });
    const stream = client.messages.stream({ model: 'claude-sonnet-4', max_tokens: 200, messages });
    const firstEvent = await new Promise<string>((resolve) => stream.on('streamEvent', (ev) => resolve(ev.type)));
    expect(firstEvent).toBe('message_start');
    expect(e.provider.responses[0]!.outcome).toBe('pending');
    e.provider.release();
    const final = await stream.finalMessage();
    expect(final.stop_reason).toBe('end_turn');
    await received[0]!.done;
    expect(bytesOf(received[0]!.chunks).toString()).toBe(bytesOf(e.provider.responses[0]!.chunks).toString());
  });

  it('an overloaded provider (529) surfaces as the SDK’s error with the provider body', async () => {
    e.provider.script({ error: { status: 529 } }, { error: { status: 529 } }, { error: { status: 529 } }, { error: { status: 529 } });
    const err = await client.messages.create({ model: 'claude-sonnet-4', max_tokens: 10, messages }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
  });
});
