/**
 * @module pricing/cost
 * Cost of a request's usage in integer micro-dollars (1 USD = 1,000,000 µ$).
 *
 * Each kind of token is multiplied by its integer rate (µ$ per MTok) in BigInt, the products are
 * summed exactly, and the sum is divided by 10⁶ once, rounding half up: one rounding per
 * request, never a float, never a sum of rounded parts. A request of 1 gpt-4o-mini input token
 * (0.15 µ$) costs 0 µ$; 4 of them cost 1 µ$ (0.6 → 1). Budgets add these integers.
 */
import type { Price } from './price.js';

/** Tokens of one request, by how they are billed. */
export interface TokenUsage {
  /** Input tokens billed at the full input rate (neither cache reads nor cache writes). */
  readonly inputTokens: number;
  /** Output tokens, reasoning tokens included (providers bill them as output). */
  readonly outputTokens: number;
  /** Input tokens read from the provider's prompt cache. */
  readonly cachedInputTokens?: number;
  /** Input tokens written to the provider's prompt cache (Anthropic). */
  readonly cacheWriteTokens?: number;
}

const MICRO_PER_MTOK = 1_000_000n;

function tokens(n: number | undefined, what: string): bigint {
  const v = n ?? 0;
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer, got ${v}`);
  return BigInt(v);
}

/** Cost in micro-dollars (integer, rounded half up once). */
export function cost(usage: TokenUsage, price: Price): number {
  const sum =
    tokens(usage.inputTokens, 'inputTokens') * BigInt(price.inputMicrosPerMTok) +
    tokens(usage.outputTokens, 'outputTokens') * BigInt(price.outputMicrosPerMTok) +
    tokens(usage.cachedInputTokens, 'cachedInputTokens') * BigInt(price.cachedInputMicrosPerMTok) +
    tokens(usage.cacheWriteTokens, 'cacheWriteTokens') * BigInt(price.cacheWriteMicrosPerMTok);
  const micros = (sum + MICRO_PER_MTOK / 2n) / MICRO_PER_MTOK;
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('cost exceeds the safe integer range');
  return Number(micros);
}

/**
 * OpenAI-style usage (`prompt_tokens` includes `cached_tokens`) in the billing split above.
 * Anthropic's fields already are: `input_tokens`, `cache_read_input_tokens`, `cache_creation_input_tokens`.
 */
export function usageFromOpenAi(promptTokens: number, completionTokens: number, cachedTokens = 0): TokenUsage {
  const cached = Math.min(cachedTokens, promptTokens);
  return { inputTokens: promptTokens - cached, outputTokens: completionTokens, cachedInputTokens: cached };
}

/** Micro-dollars as a USD string with six decimals (for logs and reports; no float). */
export function formatMicros(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  return `${sign}${Math.floor(abs / 1_000_000)}.${String(abs % 1_000_000).padStart(6, '0')}`;
}
