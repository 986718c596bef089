import { afterAll, describe, expect, it } from 'vitest';
import { countBpe } from '../../extproc/tokens/bpe.js';
import { chatParts } from '../../extproc/tokens/chat.js';
import { TokenCounter } from '../../extproc/tokens/counter.js';
import { encodingForModel, estimationFactor, modelFamily } from '../../extproc/tokens/encodings.js';
import { countRequestTokens, estimateUpperBound } from '../../extproc/tokens/estimate.js';
import { getEncoding } from 'js-tiktoken';

const counter = new TokenCounter({ inlineMaxChars: 64 });
afterAll(() => counter.close());

describe('encodings per model family', () => {
  it.each([
    ['gpt-4o', 'o200k_base'],
    ['gpt-4o-mini-2024-07-18', 'o200k_base'],
    ['gpt-4.1-nano', 'o200k_base'],
    ['o1', 'o200k_base'],
    ['o3-mini', 'o200k_base'],
    ['o4-mini', 'o200k_base'],
    ['gpt-5', 'o200k_base'],
    ['gpt-4', 'cl100k_base'],
    ['gpt-4-turbo', 'cl100k_base'],
    ['gpt-3.5-turbo', 'cl100k_base'],
  ])('%s → %s', (model, enc) => expect(encodingForModel(model)).toBe(enc));

  it('Claude and Mistral are estimated with a configurable factor', () => {
    expect(modelFamily('claude-sonnet-4-20250514')).toBe('anthropic');
    expect(modelFamily('mistral-large-latest')).toBe('mistral');
    expect(estimationFactor('claude-opus-4')).toBe(1.2);
    expect(estimationFactor('claude-opus-4', { anthropic: 1.3, mistral: 1, unknown: 1 })).toBe(1.3);
    expect(estimationFactor('gpt-4o')).toBe(1);
  });
});

describe('exact counts', () => {
  const text = 'Hello, world! Überprüfung 東京 🚀 function f(x) { return x * 2; } <|endoftext|>';
  it('gpt-tokenizer agrees with js-tiktoken (the reference port) in both encodings', () => {
    for (const enc of ['o200k_base', 'cl100k_base'] as const) {
      expect(countBpe(text, enc)).toBe(getEncoding(enc).encode(text, [], []).length);
    }
  });
  it('the worker gives the inline count, for large texts too', async () => {
    const big = text.repeat(2000);
    expect(await counter.count(big, 'o200k_base')).toBe(countBpe(big, 'o200k_base'));
    expect(await counter.count(big, 'cl100k_base')).toBe(countBpe(big, 'cl100k_base'));
    expect(await counter.count('', 'o200k_base')).toBe(0);
  });
  it('concurrent counts come back to the right caller', async () => {
    const texts = Array.from({ length: 20 }, (_, i) => 'word '.repeat(100 + i * 37));
    const counts = await Promise.all(texts.map((t) => counter.count(t, 'o200k_base')));
    expect(counts).toEqual(texts.map((t) => countBpe(t, 'o200k_base')));
  });
});

describe('chat overhead (OpenAI cookbook method)', () => {
  // Reference values from openai-cookbook "How to count tokens with tiktoken": its example
  // conversation is 124 prompt tokens for gpt-4o / gpt-4o-mini and 129 for gpt-4, as the API reported.
  const messages = [
    { role: 'system', content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.' },
    { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
    { role: 'system', name: 'example_assistant', content: 'Things working well together will increase revenue.' },
    { role: 'system', name: 'example_user', content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage." },
    { role: 'system', name: 'example_assistant', content: "Let's talk later when we're less busy about how to do better." },
    { role: 'user', content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
  ];
  it('matches the cookbook for gpt-4o and gpt-4', async () => {
    expect((await countRequestTokens({ model: 'gpt-4o', messages }, counter, { model: 'gpt-4o' })).inputTokens).toBe(124);
    expect((await countRequestTokens({ model: 'gpt-4', messages }, counter, { model: 'gpt-4' })).inputTokens).toBe(129);
  });
  it('counts tools by the cookbook method', async () => {
    // cookbook num_tokens_for_tools example (get_current_weather, location + unit enum): 101 tokens
    // for gpt-4o with its one-message conversation.
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_current_weather',
          description: 'Get the current weather in a given location',
          parameters: {
            type: 'object',
            properties: {
              location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
              unit: { type: 'string', description: 'The unit of temperature to return', enum: ['celsius', 'fahrenheit'] },
            },
            required: ['location'],
          },
        },
      },
    ];
    const body = { model: 'gpt-4o', messages: [{ role: 'system', content: 'You are a helpful assistant that can answer to questions about the weather.' }, { role: 'user', content: "What's the weather like in San Francisco?" }], tools };
    expect((await countRequestTokens(body, counter, { model: 'gpt-4o' })).inputTokens).toBe(101);
  });
  it('images count a fixed amount, Anthropic bodies their system and tools', () => {
    const p = chatParts({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:', detail: 'low' } }] }] }, 'o200k_base');
    expect(p.fixed).toBe(3 + 85 + 3);
    const a = chatParts({ system: 'be brief', messages: [{ role: 'user', content: 'hi' }], tools: [{ name: 't', input_schema: {} }] }, 'o200k_base', true);
    expect(a.texts).toContain('be brief');
    expect(a.fixed).toBe(3 + 3 + 3 + 346);
  });
});

describe('estimateUpperBound', () => {
  const samples = [
    'plain English prose, the most common prompt. '.repeat(50),
    '東京は日本の首都です。'.repeat(50),
    '🚀🔥😀👩‍💻'.repeat(50),
    'aGVsbG8gd29ybGQ= 0x7fffffff 3.14159 '.repeat(50),
    '<|endoftext|>'.repeat(50),
    '\u0000\u0001\u0002\u00ff'.repeat(50),
  ];
  it('is never below the exact count, for any model family', async () => {
    for (const model of ['gpt-4o', 'gpt-4', 'claude-sonnet-4', 'mistral-large-latest']) {
      for (const s of samples) {
        const body = { model, messages: [{ role: 'user', content: s }], max_tokens: 7 };
        const bound = estimateUpperBound(body, { model });
        const exact = await countRequestTokens(body, counter, { model });
        expect(bound.inputTokens, `${model} ${s.slice(0, 10)}`).toBeGreaterThanOrEqual(exact.inputTokens);
        expect(bound.outputTokens).toBe(7);
      }
    }
  });
  it('reserves the configured default output when the request sets no max', () => {
    expect(estimateUpperBound({ messages: [] }, { model: 'gpt-4o', defaultMaxOutputTokens: 512 }).outputTokens).toBe(512);
    expect(estimateUpperBound({ messages: [], max_completion_tokens: 9 }, { model: 'o3' }).outputTokens).toBe(9);
  });
});
