/**
 * @module pricing/table
 * The built-in price list: USD per million tokens, by model, versioned and dated.
 *
 * Prices are decimal strings, never floats, so `$0.075` is exactly 75,000 micro-dollars per
 * million tokens (see pricing/price.ts). The gateway config's `models.*.pricing` overrides any
 * entry (one place for prices in production); this table is the default and the reference.
 *
 * Columns: `input` (uncached input), `output` (including reasoning tokens, which providers bill
 * as output), `cachedInput` (prompt-cache reads), `cacheWrite` (prompt-cache writes; Anthropic's
 * 5-minute writes. OpenAI and Mistral charge no write premium, so it equals `input` there).
 *
 * Sources, retrieved 2026-11-30:
 * - Anthropic: https://docs.anthropic.com/en/docs/about-claude/pricing (model table: base input,
 *   5m cache writes, cache hits & refreshes, output).
 * - OpenAI: https://platform.openai.com/docs/pricing (now https://developers.openai.com/api/docs/pricing);
 *   the pages read were dated copies of it: https://chatgptpricing-akr.pages.dev/api-pricing
 *   (gpt-4o, gpt-4o-mini, o3, gpt-5 cached input), https://deploybase.ai/articles/openai-pricing
 *   (gpt-4.1 family, o3-mini, o4-mini: "Data from OpenAI pricing page, March 2026"),
 *   https://docs.rs/crate/openai-models/0.1.1/source/src/lib.rs (o1 incl. cached input). Cached-input
 *   rates follow OpenAI's published discounts: 50% for gpt-4o / o1 / o3-mini, 75% for gpt-4.1 /
 *   o3 / o4-mini, 90% for gpt-5.
 * - Mistral: https://mistral.ai/pricing, as listed at https://www.lava.so/docs/gateway/providers/mistral
 *   (mistral-large-latest $2/$6) and https://www.aicost.ai/ai-cost-guides/pricing/mistral (Mistral
 *   Small $0.10/$0.30, "verified 2026-05-16 against Mistral AI pricing page"). Mistral publishes no
 *   cache discount: `cachedInput` = `input`.
 * Check before billing anyone: providers change prices; bump PRICING_TABLE_VERSION when you edit.
 */

/** A price list entry, USD per 1M tokens as exact decimal strings. */
export interface PriceEntry {
  readonly input: string;
  readonly output: string;
  readonly cachedInput: string;
  readonly cacheWrite: string;
}

/** Version of the table (the retrieval date of its sources). */
export const PRICING_TABLE_VERSION = '2026-11-30';

const e = (input: string, output: string, cachedInput: string, cacheWrite: string = input): PriceEntry => ({
  input,
  output,
  cachedInput,
  cacheWrite,
});

/** Built-in prices by canonical model name. */
export const PRICING_TABLE: Readonly<Record<string, PriceEntry>> = {
  // Anthropic
  'claude-opus-4-1': e('15', '75', '1.50', '18.75'),
  'claude-opus-4': e('15', '75', '1.50', '18.75'),
  'claude-sonnet-4': e('3', '15', '0.30', '3.75'),
  'claude-3-7-sonnet': e('3', '15', '0.30', '3.75'),
  'claude-3-5-haiku': e('0.80', '4', '0.08', '1'),
  'claude-3-haiku': e('0.25', '1.25', '0.03', '0.30'),
  // OpenAI
  'gpt-4o': e('2.50', '10', '1.25'),
  'gpt-4o-mini': e('0.15', '0.60', '0.075'),
  'gpt-4.1': e('2', '8', '0.50'),
  'gpt-4.1-mini': e('0.40', '1.60', '0.10'),
  'gpt-4.1-nano': e('0.10', '0.40', '0.025'),
  'gpt-5': e('1.25', '10', '0.125'),
  'gpt-5-mini': e('0.25', '2', '0.025'),
  'gpt-5-nano': e('0.05', '0.40', '0.005'),
  o1: e('15', '60', '7.50'),
  o3: e('2', '8', '0.50'),
  'o3-mini': e('1.10', '4.40', '0.55'),
  'o4-mini': e('1.10', '4.40', '0.275'),
  // Mistral
  'mistral-large': e('2', '6', '2'),
  'mistral-small': e('0.10', '0.30', '0.10'),
};

/**
 * Other names for table entries: provider aliases and the gateway catalog's short names.
 * Dated snapshots (`-20250514`, `-2024-08-06`) and `-latest` are stripped before this lookup.
 */
export const PRICING_ALIASES: Readonly<Record<string, string>> = {
  'claude-opus-4-0': 'claude-opus-4',
  'claude-sonnet-4-0': 'claude-sonnet-4',
  'claude-haiku-3-5': 'claude-3-5-haiku',
  'claude-haiku-3.5': 'claude-3-5-haiku',
  'claude-3.5-haiku': 'claude-3-5-haiku',
  'claude-3-7-sonnet': 'claude-3-7-sonnet',
  'chatgpt-4o': 'gpt-4o',
  'mistral-large-2': 'mistral-large',
  'mistral-small-3': 'mistral-small',
  'mistral-small-3.1': 'mistral-small',
  'mistral-small-3.2': 'mistral-small',
};
