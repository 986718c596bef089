// The OpenAI-compatible embeddings fake, driven by the official openai SDK.
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cosine, countTokens, embedText, faults, startFakeProvider, type FakeProvider } from './index.js';

let p: FakeProvider;
let client: OpenAI;

beforeAll(async () => {
  p = await startFakeProvider({ kind: 'embeddings', embeddings: { dimensions: 64 } });
  client = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'sk-emb', maxRetries: 0 });
});
afterAll(async () => {
  await p.close();
});
beforeEach(() => {
  p.reset();
});

const norm = (v: readonly number[]): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

describe('embeddings fake', () => {
  it('returns one normalised vector per input, in the real shape (SDK default base64 decoding)', async () => {
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'goodbye'] });
    expect(res.object).toBe('list');
    expect(res.model).toBe('text-embedding-3-small');
    expect(res.data.map((d) => [d.object, d.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
    ]);
    for (const d of res.data) {
      expect(d.embedding).toHaveLength(64);
      expect(norm(d.embedding)).toBeCloseTo(1, 5);
    }
    expect(res.usage).toEqual({ prompt_tokens: countTokens('hello world') + countTokens('goodbye'), total_tokens: 3 });
    // the SDK asked for base64 and decoded it
    expect((p.requests[0]!.json as { encoding_format: string }).encoding_format).toBe('base64');
  });

  it('float and base64 encodings carry the same float32 values; vectors are deterministic', async () => {
    const b64 = await client.embeddings.create({ model: 'm', input: 'The quick brown fox' });
    const flt = await client.embeddings.create({ model: 'm', input: 'The quick brown fox', encoding_format: 'float' });
    expect(flt.data[0]!.embedding).toEqual(b64.data[0]!.embedding);
    expect(flt.data[0]!.embedding).toEqual(embedText('The quick brown fox', 64));

    const other = await startFakeProvider({ kind: 'embeddings', embeddings: { dimensions: 64 } });
    try {
      const c2 = new OpenAI({ baseURL: `${other.url}/v1`, apiKey: 'k', maxRetries: 0 });
      const again = await c2.embeddings.create({ model: 'm', input: 'The quick brown fox', encoding_format: 'float' });
      expect(again.data[0]!.embedding).toEqual(flt.data[0]!.embedding);
    } finally {
      await other.close();
    }
  });

  it('honours the dimensions parameter', async () => {
    const res = await client.embeddings.create({ model: 'm', input: 'x', dimensions: 8, encoding_format: 'float' });
    expect(res.data[0]!.embedding).toHaveLength(8);
  });

  it('bag-of-words vectors: shared words are close, unrelated texts are not', async () => {
    const res = await client.embeddings.create({
      model: 'm',
      encoding_format: 'float',
      input: ['What is the capital of France?', 'what is the capital of france', 'Bananas grow on tropical plants'],
    });
    const [a, b, c] = res.data.map((d) => d.embedding);
    expect(cosine(a!, b!)).toBeCloseTo(1, 5);
    expect(cosine(a!, c!)).toBeLessThan(0.6);
  });

  it("'hash' mode and a custom embed function", async () => {
    expect(cosine(embedText('a b', 32, { mode: 'hash' }), embedText('a b c', 32, { mode: 'hash' }))).toBeLessThan(0.9);
    const custom = await startFakeProvider({ kind: 'embeddings', embeddings: { embed: (_t, d) => Array.from({ length: d }, () => 2) } });
    try {
      const c2 = new OpenAI({ baseURL: `${custom.url}/v1`, apiKey: 'k', maxRetries: 0 });
      const r = await c2.embeddings.create({ model: 'm', input: 'x', dimensions: 4, encoding_format: 'float' });
      expect(r.data[0]!.embedding).toEqual([0.5, 0.5, 0.5, 0.5]);
    } finally {
      await custom.close();
    }
  });

  it('scripted errors use the OpenAI error shape', async () => {
    p.script(faults.status(503));
    const err = await client.embeddings.create({ model: 'm', input: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as InstanceType<typeof OpenAI.APIError>).type).toBe('server_error');
  });

  it('the openai fake serves embeddings too', async () => {
    const o = await startFakeProvider({ kind: 'openai', embeddings: { dimensions: 16 } });
    try {
      const c2 = new OpenAI({ baseURL: `${o.url}/v1`, apiKey: 'k', maxRetries: 0 });
      const r = await c2.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
      expect(r.data[0]!.embedding).toHaveLength(16);
    } finally {
      await o.close();
    }
  });
});
