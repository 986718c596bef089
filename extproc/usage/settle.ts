/**
 * @module usage/settle
 * From what a response told us to the tokens and cost of the record: the provider's own
 * figures when it gave them, else a count with the model's tokenizer (marked `estimated`), and
 * the cost in integer micro-dollars at the served model's price (pricing/).
 */
import { cost, resolvePrice, type Price, type PricedModel } from '../pricing/index.js';
import type { Usage } from '../providers/usage.js';
import { countOutputTokens, countRequestTokens, type TokenCounter } from '../tokens/index.js';
import type { RecordTokens } from './record.js';

/** Prices by model name (catalog name, upstream name or provider name), memoised. */
export class PriceBook {
  private readonly memo = new Map<string, Price | null>();
  private readonly byUpstream = new Map<string, string>();

  constructor(private readonly models: Readonly<Record<string, unknown>>) {
    for (const [name, m] of Object.entries(models)) {
      const upstream = (m as PricedModel | undefined)?.upstreamName;
      if (upstream) this.byUpstream.set(upstream, name);
    }
  }

  /**
   * The catalog name of a model the provider named (its upstream name, or a dated snapshot of
   * a catalog model such as `gpt-4o-2024-08-06`), else the name itself.
   */
  catalogName(model: string): string {
    if (model in this.models) return model;
    const known = this.byUpstream.get(model);
    if (known) return known;
    const undated = model.replace(/-\d{4}-?\d{2}-?\d{2}$/, '');
    if (undated !== model) return undated in this.models ? undated : (this.byUpstream.get(undated) ?? model);
    return model;
  }

  /** The price of `model`, or undefined when neither the config nor the table prices it. */
  price(model: string): Price | undefined {
    let p = this.memo.get(model);
    if (p === undefined) {
      p = resolvePrice(this.catalogName(model), this.models as Record<string, PricedModel>) ?? null;
      this.memo.set(model, p);
    }
    return p ?? undefined;
  }
}

/** Cost of `tokens` at `price`, in micro-dollars (input split into uncached / cached / written). */
export function costOf(tokens: RecordTokens, price: Price): number {
  const cachedInput = Math.min(tokens.cachedInput, tokens.input);
  const cacheWrite = Math.min(tokens.cacheWrite, tokens.input - cachedInput);
  return cost({ inputTokens: tokens.input - cachedInput - cacheWrite, outputTokens: tokens.output, cachedInputTokens: cachedInput, cacheWriteTokens: cacheWrite }, price);
}

/** Tokens from a provider's usage. */
export function tokensOf(u: Usage): RecordTokens {
  return { input: u.inputTokens, output: u.outputTokens, cachedInput: u.cachedInputTokens, cacheWrite: u.cacheWriteTokens, reasoning: u.reasoningTokens };
}

export const ZERO_TOKENS: Readonly<RecordTokens> = Object.freeze({ input: 0, output: 0, cachedInput: 0, cacheWrite: 0, reasoning: 0 });

/**
 * Tokens for a response whose provider gave no final usage: what it did report (Anthropic's
 * `message_start` input), the rest counted with the tokenizer: the request as sent, the output
 * that was delivered.
 */
export async function estimateTokens(
  reported: Usage,
  outputText: string,
  requestBody: Readonly<Record<string, unknown>> | undefined,
  model: string,
  counter: TokenCounter,
): Promise<RecordTokens> {
  const t = tokensOf(reported);
  if (t.input === 0 && requestBody) t.input = (await countRequestTokens(requestBody, counter, { model })).inputTokens;
  if (outputText.length > 0) t.output = Math.max(t.output, (await countOutputTokens(outputText, counter, { model })).outputTokens);
  return t;
}
