// OpenAI-compatible embeddings: POST /v1/embeddings with deterministic, normalised vectors.
// Served by kind 'embeddings' (OpenAI error and auth shapes) and also by the 'openai' and
// 'mistral' fakes, in their own error shapes.
import { createHash } from 'node:crypto';
import type { Dialect, EmbeddingOptions, ErrorSpec, HandlerContext, ResponsePlan } from './core.js';
import { jsonPlan, parseJsonBody } from './core.js';
import { openaiAuth, openaiError, openaiErrorFrame, openaiHeaders, openaiNotFound } from './openai.js';
import { countTokens, hexId } from './text.js';

export const DEFAULT_EMBEDDING_DIMENSIONS = 1536;

/** sfc32 PRNG seeded from a sha256 digest: deterministic across runs and platforms. */
function prng(seedText: string): () => number {
  const d = createHash('sha256').update(seedText).digest();
  let a = d.readUInt32LE(0);
  let b = d.readUInt32LE(4);
  let c = d.readUInt32LE(8);
  let e = d.readUInt32LE(12);
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    e >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    e = (e + 1) | 0;
    t = (t + e) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

function seededVector(seed: string, dims: number): number[] {
  const next = prng(seed);
  const v = new Array<number>(dims);
  // Sum of two uniforms: a cheap, centred, roughly bell-shaped component.
  for (let i = 0; i < dims; i++) v[i] = next() + next() - 1;
  return v;
}

/** Scale to unit length and round every component to float32 (what base64 carries). */
export function normalise(v: readonly number[]): number[] {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  if (norm === 0 || !Number.isFinite(norm)) {
    const out = new Array<number>(v.length).fill(0);
    if (out.length > 0) out[0] = 1;
    return out;
  }
  return v.map((x) => Math.fround(x / norm));
}

/** The vector the fake returns for `text` (see EmbeddingOptions.mode). */
export function embedText(text: string, dims: number, opts: EmbeddingOptions = {}): number[] {
  if (opts.embed) return normalise(opts.embed(text, dims));
  if (opts.mode === 'hash') return normalise(seededVector(`text:${text}`, dims));
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  if (words.length === 0) return normalise(seededVector(`text:${text}`, dims));
  const sum = new Array<number>(dims).fill(0);
  for (const w of words) {
    const wv = seededVector(`word:${w}`, dims);
    for (let i = 0; i < dims; i++) sum[i]! += wv[i]!;
  }
  return normalise(sum);
}

/** Cosine similarity (vectors from the fake are unit length, so this is the dot product). */
export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

/** Float32 little-endian bytes, base64: the `encoding_format: "base64"` wire form. */
export function toBase64Float32(v: readonly number[]): string {
  const f = Float32Array.from(v);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

type ErrorFn = (spec: ErrorSpec) => ResponsePlan;

/** Inputs as texts: string | string[] | token-id array | array of token-id arrays. */
function inputTexts(input: unknown): { texts: string[]; tokens: number } | undefined {
  if (typeof input === 'string') return { texts: [input], tokens: countTokens(input) };
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every((x) => typeof x === 'string')) {
    const texts = input as string[];
    return { texts, tokens: texts.reduce((a, t) => a + countTokens(t), 0) };
  }
  if (input.every((x) => typeof x === 'number')) return { texts: [input.join(' ')], tokens: input.length };
  if (input.every((x) => Array.isArray(x) && x.every((y) => typeof y === 'number'))) {
    const arrays = input as number[][];
    return { texts: arrays.map((a) => a.join(' ')), tokens: arrays.reduce((a, x) => a + x.length, 0) };
  }
  return undefined;
}

/** Handle POST /v1/embeddings once auth and JSON parsing passed. */
export function embeddingsResponse(
  ctx: HandlerContext,
  body: Record<string, unknown>,
  error: ErrorFn,
  headers: Record<string, string>,
  flavour: 'openai' | 'mistral' = 'openai',
): ResponsePlan {
  if (typeof body.model !== 'string' || body.model === '') {
    return error({ status: 400, message: 'you must provide a model parameter', type: 'invalid_request_error' });
  }
  const parsed = inputTexts(body.input);
  if (!parsed) {
    return error({
      status: 400,
      message: "'input' is a required property and must be a non-empty string or array",
      type: 'invalid_request_error',
      param: 'input',
    });
  }
  const requested = body.dimensions ?? body.output_dimension;
  const dims =
    typeof requested === 'number' && Number.isInteger(requested) && requested > 0
      ? requested
      : (ctx.options.embeddings?.dimensions ?? DEFAULT_EMBEDDING_DIMENSIONS);
  const base64 = body.encoding_format === 'base64';
  const model = ctx.behaviour.model ?? ctx.options.model ?? body.model;
  const tokens = ctx.behaviour.usage?.inputTokens ?? parsed.tokens;
  const data = parsed.texts.map((t, index) => {
    const v = embedText(t, dims, ctx.options.embeddings);
    return { object: 'embedding', index, embedding: base64 ? toBase64Float32(v) : v };
  });
  const out: Record<string, unknown> =
    flavour === 'mistral'
      ? {
          id: hexId(`${ctx.idSeed}:emb`, 32),
          object: 'list',
          data,
          model,
          usage: { prompt_tokens: tokens, total_tokens: tokens, completion_tokens: 0 },
        }
      : { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
  return jsonPlan(200, out, headers);
}

/** Kind 'embeddings': an OpenAI-compatible embeddings server. */
export const embeddingsDialect: Dialect = {
  kind: 'embeddings',
  handle(ctx) {
    const req = ctx.request;
    if (!(req.method === 'POST' && (req.path === '/v1/embeddings' || req.path === '/embeddings'))) {
      return openaiNotFound(ctx);
    }
    const denied = openaiAuth(ctx);
    if (denied) return denied;
    const parsed = parseJsonBody(ctx, (s) => openaiError(s, ctx));
    if (!parsed.ok) return parsed.plan;
    return embeddingsResponse(ctx, parsed.body, (s) => openaiError(s, ctx), openaiHeaders(ctx));
  },
  error: (spec, ctx) => openaiError(spec, ctx),
  streamErrorFrame: (spec) => openaiErrorFrame(spec),
};
