/**
 * @module cache/lexicalEmbedder
 * The local default embedder: deterministic, no network, no model download.
 *
 * Text is normalised (NFKC, lower case, punctuation to spaces, whitespace collapsed), then
 * turned into features: each word, and every character 3-, 4- and 5-gram of the normalised
 * text framed by spaces (so n-grams also span word boundaries, which makes word order count a
 * little). Features are hashed into `dimensions` buckets with a hashed sign (the sign keeps
 * collisions from only ever adding up), and the vector is scaled to unit length.
 *
 * What it catches: differences of case, punctuation, whitespace, Unicode form, small
 * insertions or deletions ("please", "the"), typos, reordered words (partially). What it does
 * not: paraphrase ("how tall is" vs "what is the height of") and translation. Those need a
 * sentence-embedding model (configure the HTTP embedder); the lexical default trades hit rate
 * for never needing one.
 */
import type { Embedder } from './embedder.js';

export const LEXICAL_EMBEDDER_VERSION = 'lexical-v1';

/** Normalised form the features are computed on. */
export function normaliseText(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

const WORD_WEIGHT = 1.5;

/** 32-bit avalanche (murmur3 finaliser): spreads FNV's weak low bits over the whole word. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function add(v: Float32Array, h: number, weight: number): void {
  const m = mix(h);
  const idx = m % v.length;
  // Sign from a bit the index does not use (for power-of-two sizes) and an independent mix.
  const sign = mix(m ^ 0x9e3779b9) & 1 ? 1 : -1;
  v[idx]! += sign * weight;
}

/** FNV-1a over code units start..end of `s`, seeded per feature family. */
function fnv(s: string, start: number, end: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The vector of one text. */
export function lexicalVector(text: string, dimensions: number): Float32Array {
  const v = new Float32Array(dimensions);
  const norm = normaliseText(text);
  if (norm.length === 0) {
    v[0] = 1;
    return v;
  }
  // Words.
  let start = 0;
  for (let i = 0; i <= norm.length; i++) {
    if (i === norm.length || norm.charCodeAt(i) === 32) {
      if (i > start) add(v, fnv(norm, start, i, 1), WORD_WEIGHT);
      start = i + 1;
    }
  }
  // Character 3..5-grams of " text ".
  const framed = ` ${norm} `;
  for (let i = 0; i + 3 <= framed.length; i++) {
    for (let n = 3; n <= 5 && i + n <= framed.length; n++) add(v, fnv(framed, i, i + n, 2 + n), 1);
  }
  let sum = 0;
  for (let i = 0; i < dimensions; i++) sum += v[i]! * v[i]!;
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < dimensions; i++) v[i]! *= inv;
  return v;
}

export class LexicalEmbedder implements Embedder {
  readonly id: string;
  constructor(readonly dimensions = 384) {
    if (!Number.isInteger(dimensions) || dimensions < 16) throw new RangeError('lexical embedder needs at least 16 dimensions');
    this.id = `${LEXICAL_EMBEDDER_VERSION}:${dimensions}`;
  }

  embed(texts: readonly string[]): Promise<Float32Array[]> {
    return Promise.resolve(texts.map((t) => lexicalVector(t, this.dimensions)));
  }
}
