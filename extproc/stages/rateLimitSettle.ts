/**
 * @module stages/rateLimitSettle
 * What a request really used, for settling its reservation: the provider's usage fields read
 * from the answer as it flows (SSE events the exchange already parsed, or the JSON body), else
 * the generated text counted with the model's tokenizer (off the event loop for long texts).
 * A stream cut short (client gone) is charged for the text that passed, since the provider
 * generated and bills it.
 */
import type { LimitAmounts } from '../limits/index.js';
import type { Exchange } from '../pipeline/exchange.js';
import type { BodyChunk } from '../pipeline/phases.js';
import { UsageCollector } from '../usage/collector.js';
import { countOutputTokens, countRequestTokens, type EstimationFactors, type TokenCounter } from '../tokens/index.js';
import { costOf, type LimitModel } from './rateLimitEstimate.js';

/**
 * Reads one response's usage, whichever stream (main or observability) its bytes come from: the
 * usage stage's collector (one reading of usage for the whole gateway), plus whether the model
 * generated anything, which decides between a refund and a charge.
 */
export class ResponseUsage extends UsageCollector {
  override chunk(x: Exchange, chunk: BodyChunk, now: number = performance.now()): void {
    super.chunk(x, chunk, now);
  }

  /** The model generated something (the provider reported usage, or output text passed). */
  get generated(): boolean {
    const u = this.extractor.usage;
    return u.complete || u.outputTokens > 0 || this.extractor.textLength > 0;
  }
}

/** How the actual amounts were found (for logs and tests). */
export type UsageSource = 'provider' | 'counted' | 'reserved';

/**
 * The amounts to settle a reservation to. `provider`: the answer's usage fields; `counted`:
 * input tokens counted from the request and output from the text that passed (no usage
 * fields, e.g. a stream without `include_usage` or one cut short); `reserved`: nothing could be
 * read (unreadable answer), so the reservation stands.
 */
export async function actualUsage(
  read: ResponseUsage,
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
