/**
 * @module tokens/encodings
 * Which tokenizer a model's tokens are counted with, and how far that count is from the truth.
 *
 * OpenAI models are counted exactly with their own BPE: `o200k_base` for GPT-4o and everything
 * after it (gpt-4.1, gpt-4.5, gpt-5, the o-series), `cl100k_base` for GPT-4 / GPT-3.5. Anthropic
 * and Mistral publish no offline tokenizer, so their counts are estimates: the o200k count times
 * a calibration factor (see `DEFAULT_ESTIMATION_FACTORS`), configurable per family.
 */

/** BPE encodings the counter knows. */
export type EncodingName = 'o200k_base' | 'cl100k_base';

/** How a model's tokens are counted. */
export type ModelFamily = 'openai-o200k' | 'openai-cl100k' | 'anthropic' | 'mistral' | 'unknown';

/** Families whose count is an estimate, with the factor applied to the o200k count. */
export type EstimationFactors = Readonly<Record<'anthropic' | 'mistral' | 'unknown', number>>;

/**
 * Default calibration factors (tokens of the provider ÷ o200k tokens for the same text).
 *
 * Anthropic: 1.20. Anthropic's tokenizer is not public; the published comparison of Claude 3.5
 * Sonnet against GPT-4o on the same inputs (Lavanya Gupta, "Hidden costs in AI deployment",
 * VentureBeat, May 2025; summarised at
 * https://news.quarkybyte.com/understanding-tokenizer-differences-impacting-ai-model-costs-and-efficiency-2025-05-01)
 * measured +16% on English articles, +21% on maths and +30% on Python code. 1.20 sits at the
 * prose/maths midpoint and errs high for prose (a limiter should over-reserve, not under-);
 * code-heavy deployments should set 1.30. Settlement uses the provider's own usage fields, so
 * the factor only shapes reservations and the rare answer that reports no usage.
 *
 * Mistral: 1.10. Mistral's Tekken tokenizer (Mistral Large 2 / Small 3+) has a vocabulary of
 * ~131k, between cl100k and o200k; no public measurement against o200k was found, so the factor
 * is a deliberate margin, not a measurement. Override it when you have calibrated it on your
 * traffic (the provider's `usage` fields against `countTokens` for the same prompts).
 *
 * unknown: 1.25, a margin for models the gateway cannot classify.
 */
export const DEFAULT_ESTIMATION_FACTORS: EstimationFactors = { anthropic: 1.2, mistral: 1.1, unknown: 1.25 };

/** The family of a model name (the provider's name or the gateway catalog's, case-insensitive). */
export function modelFamily(model: string): ModelFamily {
  const m = model.toLowerCase();
  if (m.startsWith('claude') || m.includes('anthropic')) return 'anthropic';
  if (/(^|\/)(mistral|ministral|magistral|codestral|devstral|pixtral|open-mistral|open-mixtral|mixtral)/.test(m)) return 'mistral';
  // Newest first: anything that is not explicitly an older GPT is o200k.
  if (/(^|\/)(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o1|o3|o4|gpt-oss|codex)/.test(m)) return 'openai-o200k';
  if (/(^|\/)(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada)/.test(m)) return 'openai-cl100k';
  return 'unknown';
}

/** The encoding a model is counted with (estimated families count with o200k, then scale). */
export function encodingForModel(model: string): EncodingName {
  return modelFamily(model) === 'openai-cl100k' ? 'cl100k_base' : 'o200k_base';
}

/** The factor applied to raw BPE counts for a model (1 for OpenAI models: exact). */
export function estimationFactor(model: string, factors: EstimationFactors = DEFAULT_ESTIMATION_FACTORS): number {
  const family = modelFamily(model);
  if (family === 'openai-o200k' || family === 'openai-cl100k') return 1;
  return factors[family];
}

/** Whether counts for this model are estimates rather than the provider's own tokenizer. */
export function isEstimatedFamily(model: string): boolean {
  const family = modelFamily(model);
  return family !== 'openai-o200k' && family !== 'openai-cl100k';
}
