/**
 * @module stages/rateLimitEstimate
 * What a request is charged against its limits, before and after: the catalog name it is
 * counted under, the model name its tokens are counted with, the reservation (a cheap upper
 * bound: no BPE on the hot path) and the cost of a usage at the model's price.
 */
import type { LimitAmounts, RateLimitOptions } from '../limits/index.js';
import { estimationFactorsOf } from '../limits/index.js';
import { cost, resolvePrice, type Price, type PricedModel } from '../pricing/index.js';
import type { Usage } from '../providers/usage.js';
import { estimateUpperBound, type EstimationFactors } from '../tokens/index.js';

/** The model a request is counted under. */
export interface LimitModel {
  /** Catalog name (what per-model limits name), else the name the client sent. */
  readonly name: string;
  /** Name the tokenizer family is chosen by (the provider's name when the catalog has one). */
  readonly tokenizerName: string;
  /** Price per token, when the config or the built-in table has one. */
  readonly price: Price | undefined;
}

/** Name used when a request names no model and no route chose one. */
export const UNKNOWN_MODEL = 'unknown';

/** Catalog lookups for the limits of one config generation (memoised per model name). */
export class LimitModels {
  private readonly byName = new Map<string, string>();
  private readonly memo = new Map<string, LimitModel>();
  readonly factors: EstimationFactors;

  constructor(
    private readonly models: Readonly<Record<string, unknown>>,
    private readonly options: Pick<RateLimitOptions, 'defaultOutputTokens' | 'bytesPerToken' | 'estimationFactors'>,
  ) {
    this.factors = estimationFactorsOf(options);
    for (const [name, raw] of Object.entries(models)) {
      const m = raw as { upstreamName?: string; aliases?: readonly string[] } | undefined;
      if (m?.upstreamName && !this.byName.has(m.upstreamName)) this.byName.set(m.upstreamName, name);
      for (const alias of m?.aliases ?? []) this.byName.set(alias, name);
    }
  }

  /** The catalog model for a name the client (or the route) gave: a model, an alias or an upstream name. */
  resolve(requested: string | undefined): LimitModel {
    const key = requested ?? UNKNOWN_MODEL;
    let m = this.memo.get(key);
    if (m) return m;
    const name = key in this.models ? key : (this.byName.get(key) ?? key);
    const entry = this.models[name] as PricedModel | undefined;
    m = { name, tokenizerName: entry?.upstreamName ?? name, price: resolvePrice(name, this.models as Readonly<Record<string, PricedModel>>) };
    // Client-chosen names are unbounded: remember only catalog models and a bounded number of others.
    if (name in this.models || this.memo.size < 1024) this.memo.set(key, m);
    return m;
  }

  /** The reservation of a request: tokens by their byte bound plus its output cap, and their cost. */
  estimate(body: Readonly<Record<string, unknown>>, model: LimitModel): LimitAmounts {
    const t = estimateUpperBound(body, {
      model: model.tokenizerName,
      defaultMaxOutputTokens: this.options.defaultOutputTokens,
      bytesPerToken: this.options.bytesPerToken,
      factors: this.factors,
    });
    return { inputTokens: t.inputTokens, outputTokens: t.outputTokens, costMicros: costOf(model, { inputTokens: t.inputTokens, outputTokens: t.outputTokens }) };
  }
}

/** Cost in micro-dollars of tokens at the model's price (0 when unpriced: no budget can count it). */
export function costOf(model: LimitModel, usage: Pick<Usage, 'inputTokens' | 'outputTokens'> & Partial<Pick<Usage, 'cachedInputTokens' | 'cacheWriteTokens'>>): number {
  if (!model.price) return 0;
  const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
  const written = Math.min(usage.cacheWriteTokens ?? 0, usage.inputTokens - cached);
  return cost(
    { inputTokens: usage.inputTokens - cached - written, outputTokens: usage.outputTokens, cachedInputTokens: cached, cacheWriteTokens: written },
    model.price,
  );
}
