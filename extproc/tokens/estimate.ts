/**
 * @module tokens/estimate
 * Token counts for a request: a cheap upper bound for reserving at once, and the exact count
 * (off the event loop for large texts) for settling.
 *
 * The bound runs no BPE: every token of a byte-level BPE (tiktoken's, and as far as is known
 * Claude's and Mistral's Tekken) covers at least one UTF-8 byte, so `bytes / bytesPerToken`
 * with `bytesPerToken: 1` can never be below the true count, whatever the text. It is ~4× above
 * it for English, so the reservation is loose until settlement; `bytesPerToken` trades that
 * strictness for tighter reservations (bench/tokens.ts prints the smallest bytes/token seen on
 * a varied sample). `Buffer.byteLength` is native (GB/s), not a per-token walk.
 */
import { chatParts, requestedMaxOutput } from './chat.js';
import type { TokenCounter } from './counter.js';
import { DEFAULT_ESTIMATION_FACTORS, encodingForModel, estimationFactor, isEstimatedFamily, modelFamily } from './encodings.js';
import type { EstimationFactors } from './encodings.js';

/** Options for estimates. */
export interface EstimateOptions {
  /** Model the request is for (the provider's or the catalog's name). */
  readonly model: string;
  /** Output tokens reserved when the request sets no max (default 4096). */
  readonly defaultMaxOutputTokens?: number;
  /** UTF-8 bytes per token assumed by the bound (default 1: a strict bound). */
  readonly bytesPerToken?: number;
  /** Calibration factors for estimated families. */
  readonly factors?: EstimationFactors;
}

/** A request's token estimate. */
export interface TokenEstimate {
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** True when the count is not the provider's own tokenizer (Claude, Mistral, unknown). */
  readonly estimated: boolean;
}

/** Upper bound on a request's tokens without tokenizing (for reserving before counting). */
export function estimateUpperBound(body: Readonly<Record<string, unknown>>, options: EstimateOptions): TokenEstimate {
  const encoding = encodingForModel(options.model);
  const anthropic = modelFamily(options.model) === 'anthropic';
  const parts = chatParts(body, encoding, anthropic);
  const perToken = options.bytesPerToken ?? 1;
  let bytes = 0;
  for (const t of parts.texts) bytes += Buffer.byteLength(t, 'utf8');
  const factor = estimationFactor(options.model, options.factors ?? DEFAULT_ESTIMATION_FACTORS);
  // The byte bound already holds for any byte-level BPE; the factor applies only when the
  // caller chose a looser bytesPerToken (then the estimate is scaled like an exact count).
  const textTokens = perToken <= 1 ? bytes : Math.ceil((bytes / perToken) * factor);
  return {
    inputTokens: parts.fixed + textTokens,
    outputTokens: requestedMaxOutput(body) ?? options.defaultMaxOutputTokens ?? 4096,
    estimated: true,
  };
}

/** Input tokens of a request, counted with the model's encoding (scaled for estimated families). */
export async function countRequestTokens(
  body: Readonly<Record<string, unknown>>,
  counter: TokenCounter,
  options: Pick<EstimateOptions, 'model' | 'factors'>,
): Promise<{ inputTokens: number; estimated: boolean }> {
  const encoding = encodingForModel(options.model);
  const anthropic = modelFamily(options.model) === 'anthropic';
  const parts = chatParts(body, encoding, anthropic);
  const counts = await Promise.all(parts.texts.map((t) => counter.count(t, encoding)));
  const text = counts.reduce((a, b) => a + b, 0);
  const factor = estimationFactor(options.model, options.factors ?? DEFAULT_ESTIMATION_FACTORS);
  return { inputTokens: parts.fixed + Math.ceil(text * factor), estimated: isEstimatedFamily(options.model) };
}

/** Tokens of generated text (a streamed answer with no usage fields), scaled for estimated families. */
export async function countOutputTokens(
  text: string,
  counter: TokenCounter,
  options: Pick<EstimateOptions, 'model' | 'factors'>,
): Promise<{ outputTokens: number; estimated: boolean }> {
  const n = await counter.count(text, encodingForModel(options.model));
  const factor = estimationFactor(options.model, options.factors ?? DEFAULT_ESTIMATION_FACTORS);
  return { outputTokens: Math.ceil(n * factor), estimated: isEstimatedFamily(options.model) };
}
