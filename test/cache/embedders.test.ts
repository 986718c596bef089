import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosineSimilarity, EmbedderError, HttpEmbedder, LexicalEmbedder, normaliseText } from '../../extproc/cache/index.js';
import { embedText, startFakeProvider, type FakeProvider } from '../fakes/index.js';

describe('lexical embedder', () => {
  const e = new LexicalEmbedder(384);
  const sim = async (a: string, b: string): Promise<number> => {
    const [va, vb] = await e.embed([a, b]);
    return cosineSimilarity(va!, vb!);
  };

  it('is deterministic, unit length and of the configured size', async () => {
    const [a, b] = await e.embed(['Hello world', 'Hello world']);
    expect(a).toHaveLength(384);
    expect([...a!]).toEqual([...b!]);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 5);
    expect(e.id).toBe('lexical-v1:384');
  });

  it('ignores case, punctuation, whitespace and Unicode form', async () => {
    expect(normaliseText('  What IS  the café?! ')).toBe('what is the café');
    expect(await sim('What is the capital of France?', 'what   is the capital of FRANCE')).toBeCloseTo(1, 6);
    expect(await sim('café', 'cafe\u0301')).toBeCloseTo(1, 6);
  });

  it('keeps trivial rewording close and unrelated text far', async () => {
    expect(await sim('Explain how a hash table works.', 'Please explain how a hash table works.')).toBeGreaterThan(0.85);
    expect(await sim('Explain how a hash table works.', 'What is the boiling point of water?')).toBeLessThan(0.3);
  });

  it('gives a fixed vector for empty text', async () => {
    const [v] = await e.embed(['  ?! ']);
    expect(v![0]).toBe(1);
  });
});

describe('HTTP embedder against the fake embeddings server', () => {
  let fake: FakeProvider;
  beforeAll(async () => {
    fake = await startFakeProvider({ kind: 'embeddings', auth: { apiKey: 'sk-test' } });
  });
  afterAll(() => fake.close());

  const client = (o: Partial<ConstructorParameters<typeof HttpEmbedder>[0]> = {}): HttpEmbedder =>
    new HttpEmbedder({ url: `${fake.url}/v1`, model: 'text-embedding-3-small', dimensions: 64, apiKey: 'sk-test', timeoutMs: 2_000, ...o });

  it('returns the server vectors in input order, with model, dimensions and bearer key sent', async () => {
    fake.reset();
    const out = await client().embed(['first text', 'second text']);
    expect(out).toHaveLength(2);
    const expected = embedText('second text', 64);
    out[1]!.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5));
    const req = fake.requests[0]!;
    expect(req.path).toBe('/v1/embeddings');
    expect(req.headers.authorization).toBe('Bearer sk-test');
    expect(req.json).toMatchObject({ model: 'text-embedding-3-small', input: ['first text', 'second text'], dimensions: 64 });
  });

  it('fails with failure "http" and the status on an error answer, without the key in the message', async () => {
    fake.reset();
    const err = await client({ apiKey: 'sk-wrong' }).embed(['x']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbedderError);
    expect(err).toMatchObject({ failure: 'http', status: 401 });
    expect((err as Error).message).not.toContain('sk-wrong');
    fake.script({ error: { status: 503 } });
    expect(await client().embed(['x']).catch((e: unknown) => e)).toMatchObject({ failure: 'http', status: 503 });
  });

  it('times out with failure "timeout"', async () => {
    fake.reset();
    fake.script({ delayMs: 2_000 });
    const err = await client({ timeoutMs: 100 }).embed(['x']).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'EmbedderError', failure: 'timeout' });
  });

  it('stops when the caller aborts, with failure "aborted"', async () => {
    fake.reset();
    fake.script({ delayMs: 2_000 });
    const ac = new AbortController();
    const p = client().embed(['x'], ac.signal).catch((e: unknown) => e);
    ac.abort();
    expect(await p).toMatchObject({ failure: 'aborted' });
  });

  it('rejects vectors of the wrong size and unreachable servers', async () => {
    fake.reset();
    const wrong = new HttpEmbedder({ url: `${fake.url}/v1`, model: 'm', dimensions: 64, apiKey: 'sk-test', sendDimensions: false });
    expect(await wrong.embed(['x']).catch((e: unknown) => e)).toMatchObject({ failure: 'invalid-response' });
    const down = new HttpEmbedder({ url: 'http://127.0.0.1:1/v1', model: 'm', dimensions: 8 });
    expect(await down.embed(['x']).catch((e: unknown) => e)).toMatchObject({ failure: 'network' });
  });
});
