/**
 * @module cache/embedder
 * What the semantic cache needs from an embedding model: unit-length vectors of a fixed size.
 */

export interface Embedder {
  /** Identifies the vector space (model and version); vectors of two ids are never compared. */
  readonly id: string;
  readonly dimensions: number;
  /** One unit-length vector per text, in order. Rejects with EmbedderError on any failure. */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

export type EmbedderFailure = 'timeout' | 'aborted' | 'network' | 'http' | 'invalid-response';

/** Every embedder failure; the cache stage treats all of them as a miss (fail open). */
export class EmbedderError extends Error {
  constructor(
    readonly failure: EmbedderFailure,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EmbedderError';
  }
}

/** Cosine similarity of two vectors (the dot product when both are unit length). */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
