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
import type { Dialect } from '../providers/types.js';
import { UsageExtractor } from '../providers/usage.js';
import { countOutputTokens, countRequestTokens, type EstimationFactors, type TokenCounter } from '../tokens/index.js';
import { costOf, type LimitModel } from './rateLimitEstimate.js';

/** Largest non-streamed JSON answer read for usage; a bigger one is charged by its reservation. */
export const MAX_USAGE_JSON_BYTES = 8 * 1024 * 1024;

/** Reads one response's usage, whichever stream (main or observability) its bytes come from. */
export class ResponseUsage {
  readonly extractor: UsageExtractor;
  /** Some response bytes were seen. */
  sawBody = false;
  /** A JSON answer too large or not JSON: its usage is unknown. */
  unreadable = false;
  private json: Buffer[] | undefined;
  private jsonBytes = 0;

  constructor(dialect: Dialect) {
    this.extractor = new UsageExtractor(dialect);
  }

  chunk(x: Exchange, chunk: BodyChunk): void {
    if (chunk.bytes.length > 0) this.sawBody = true;
    if (x.responseIsEventStream) {
      for (const e of x.responseEvents(chunk)) this.extractor.push(e);
      return;
    }
    // A JSON answer: one buffered chunk on the main stream, pieces on the observer's.
    if (this.unreadable) return;
    if (chunk.bytes.length > 0) {
      this.jsonBytes += chunk.bytes.length;
      if (this.jsonBytes > MAX_USAGE_JSON_BYTES) {
        this.unreadable = true;
        this.json = undefined;
        return;
      }
      (this.json ??= []).push(chunk.bytes);
    }
    if (chunk.endOfStream && this.json) {
      const body = this.json.length === 1 ? this.json[0]! : Buffer.concat(this.json);
      this.json = undefined;
      try {
        this.extractor.fromJson(JSON.parse(body.toString('utf8')));
      } catch {
        this.unreadable = true;
      }
    }
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
