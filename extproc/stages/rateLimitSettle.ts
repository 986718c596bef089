/**
 * @module stages/rateLimitSettle
 * What a request really used, for settling its reservation: the provider's usage fields read
 * from the answer as it flows (SSE events the exchange already parsed, or the JSON body), else
 * the generated text counted with the model's tokenizer (off the event loop for long texts).
 * A stream cut short (client gone) is charged for the text that passed, since the provider
 * generated and bills it.
 */
import type { LimitAmounts } from '../limits/index.js';
import type { UsageCollector } from '../usage/collector.js';
import { countOutputTokens, countRequestTokens, type EstimationFactors, type TokenCounter } from '../tokens/index.js';
import { costOf, type LimitModel } from './rateLimitEstimate.js';

/** How the actual amounts were found (for logs and tests). */
export type UsageSource = 'provider' | 'counted' | 'reserved';

/**
 * The amounts to settle a reservation to. `provider`: the answer's usage fields; `counted`:
 * input tokens counted from the request and output from the text that passed (no usage
 * fields, e.g. a stream without `include_usage` or one cut short); `reserved`: nothing could be
 * read (unreadable answer), so the reservation stands.
 */
export async function actualUsage(
  read: UsageCollector,
  body: Readonly<Record<string, unknown>> | undefined,
  model: LimitModel,
  reserved: LimitAmounts,
  counter: TokenCounter,
  factors: EstimationFactors,
): Promise<{ amounts: LimitAmounts; source: UsageSource }> {
  if (read.unreadable || (!read.sawBody && !read.generated)) return { amounts: reserved, source: 'reserved' };
  const u = read.extractor.usage;
  const options = { model: model.tokenizerName, factors };
  let inputTokens = u.inputTokens;
  if (inputTokens <= 0) inputTokens = body ? (await countRequestTokens(body, counter, options)).inputTokens : reserved.inputTokens;
  const outputTokens = u.complete ? u.outputTokens : (await countOutputTokens(read.extractor.text, counter, options)).outputTokens;
  const usage = { inputTokens, outputTokens, cachedInputTokens: u.cachedInputTokens, cacheWriteTokens: u.cacheWriteTokens };
  return { amounts: { inputTokens, outputTokens, costMicros: costOf(model, usage) }, source: u.complete ? 'provider' : 'counted' };
}
