/**
 * @module cache/httpEmbedder
 * An OpenAI-compatible embeddings client (OpenAI, Azure OpenAI, TEI, vLLM, Ollama): POST
 * `<url>/embeddings` with `{ model, input, dimensions }`. Every failure (timeout, network,
 * HTTP status, a malformed answer) rejects with an EmbedderError, which the cache stage turns
 * into a miss. The API key is sent as a bearer token and never appears in an error message.
 */
import { EmbedderError, type Embedder } from './embedder.js';

export interface HttpEmbedderConfig {
  /** Base URL, e.g. https://api.openai.com/v1 (`/embeddings` is appended unless present). */
  url: string;
  model: string;
  dimensions: number;
  apiKey?: string;
  /** Per call, including the response body. Default 2,000 ms. */
  timeoutMs?: number;
  /** Send `dimensions` in the request (models that cannot shorten vectors reject it). Default true. */
  sendDimensions?: boolean;
  /** Extra request headers (e.g. Azure's `api-key`). */
  headers?: Record<string, string>;
}

export class HttpEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly endpoint: string;

  constructor(private readonly config: HttpEmbedderConfig) {
    this.dimensions = config.dimensions;
    this.id = `http:${config.model}:${config.dimensions}`;
    const base = config.url.replace(/\/+$/, '');
    this.endpoint = base.endsWith('/embeddings') ? base : `${base}/embeddings`;
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const timeoutMs = this.config.timeoutMs ?? 2_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const body: Record<string, unknown> = { model: this.config.model, input: texts, encoding_format: 'float' };
    if (this.config.sendDimensions ?? true) body.dimensions = this.dimensions;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...this.config.headers };
    if (this.config.apiKey) headers.authorization = `Bearer ${this.config.apiKey}`;
    let json: unknown;
    try {
      const res = await fetch(this.endpoint, { method: 'POST', headers, body: JSON.stringify(body), signal: combined });
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        throw new EmbedderError('http', `embeddings endpoint answered HTTP ${res.status}`, res.status);
      }
      json = await res.json();
    } catch (err) {
      if (err instanceof EmbedderError) throw err;
      if (timeout.aborted) throw new EmbedderError('timeout', `embeddings call timed out after ${timeoutMs} ms`, undefined, { cause: err });
      if (signal?.aborted) throw new EmbedderError('aborted', 'embeddings call aborted', undefined, { cause: err });
      if (err instanceof SyntaxError) throw new EmbedderError('invalid-response', 'embeddings endpoint answered invalid JSON');
      throw new EmbedderError('network', `embeddings endpoint unreachable: ${(err as Error).message}`, undefined, { cause: err });
    }
    return this.parse(json, texts.length);
  }

  private parse(json: unknown, count: number): Float32Array[] {
    const data = (json as { data?: unknown } | null)?.data;
    if (!Array.isArray(data) || data.length !== count) {
      throw new EmbedderError('invalid-response', `embeddings answer has no data array of ${count} items`);
    }
    const out = new Array<Float32Array | undefined>(count);
    for (const [pos, item] of data.entries()) {
      const rec = item as { index?: unknown; embedding?: unknown };
      const index = typeof rec.index === 'number' ? rec.index : pos;
      const e = rec.embedding;
      let v: Float32Array | undefined;
      if (Array.isArray(e) && e.every((x) => typeof x === 'number')) v = Float32Array.from(e as number[]);
      else if (typeof e === 'string') {
        const buf = Buffer.from(e, 'base64');
        v = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      }
      if (!v || v.length !== this.dimensions || index < 0 || index >= count || out[index]) {
        throw new EmbedderError('invalid-response', `embedding ${index} is not a vector of ${this.dimensions} numbers`);
      }
      out[index] = unit(v);
    }
    return out as Float32Array[];
  }
}

/** Providers normally return unit vectors already; local servers may not. */
function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  if (s === 0 || !Number.isFinite(s)) throw new EmbedderError('invalid-response', 'embedding is zero or not finite');
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}
