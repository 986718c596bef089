/**
 * @module pricing/price
 * Prices as integers, and which price a model name gets.
 *
 * A `Price` holds micro-dollars per million tokens (USD/MTok × 10⁶) as integers, parsed from
 * decimal text without a float in between: any price with up to six decimals is exact.
 * `resolvePrice` looks a model up in the config's overrides first (`models.*.pricing` of the
 * gateway config, keyed by the catalog name), then in the built-in table by its name, its
 * upstream name, with a dated-snapshot suffix or `-latest` stripped, then through aliases.
 */
import { PRICING_ALIASES, PRICING_TABLE, PRICING_TABLE_VERSION } from './table.js';
import type { PriceEntry } from './table.js';

/** Integer micro-dollars per 1M tokens, per kind of token. */
export interface Price {
  readonly inputMicrosPerMTok: number;
  readonly outputMicrosPerMTok: number;
  readonly cachedInputMicrosPerMTok: number;
  readonly cacheWriteMicrosPerMTok: number;
  /** Where it came from: `config` (an override) or `table@<version>`. */
  readonly source: string;
}

/** A price override as the gateway config writes it (USD per 1M tokens). */
export interface PriceOverride {
  readonly inputPerMTok: number | string;
  readonly outputPerMTok: number | string;
  readonly cachedInputPerMTok?: number | string;
  readonly cacheWritePerMTok?: number | string;
}

/** A catalog model entry as far as pricing cares (structurally `GatewayConfig['models'][name]`). */
export interface PricedModel {
  readonly upstreamName?: string | undefined;
  readonly pricing?: PriceOverride | undefined;
}

/**
 * USD per MTok (decimal string or number) → integer micro-dollars per MTok. Numbers are
 * printed with `String()` first (shortest round-trip form, so 0.075 is "0.075"), then parsed as
 * decimal text. More than six decimals, negatives and non-numbers are errors.
 */
export function usdPerMTokToMicros(value: number | string): number {
  const text = typeof value === 'number' ? String(value) : value.trim();
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(text);
  if (!m) throw new RangeError(`invalid price "${text}": expected a non-negative decimal with at most 6 decimals`);
  const micros = Number(m[1]) * 1_000_000 + Number((m[2] ?? '').padEnd(6, '0'));
  if (!Number.isSafeInteger(micros)) throw new RangeError(`price "${text}" is too large`);
  return micros;
}

function fromEntry(entry: PriceEntry, source: string): Price {
  return {
    inputMicrosPerMTok: usdPerMTokToMicros(entry.input),
    outputMicrosPerMTok: usdPerMTokToMicros(entry.output),
    cachedInputMicrosPerMTok: usdPerMTokToMicros(entry.cachedInput),
    cacheWriteMicrosPerMTok: usdPerMTokToMicros(entry.cacheWrite),
    source,
  };
}

/** The table entry for a provider or catalog model name, if any. */
export function tablePrice(modelName: string): Price | undefined {
  const candidates = new Set<string>();
  const lower = modelName.toLowerCase().replace(/^.*\//, '');
  candidates.add(lower);
  const undated = lower.replace(/-latest$/, '').replace(/-\d{4}-?\d{2}-?\d{2}$/, '').replace(/-\d{4}$/, '');
  candidates.add(undated);
  for (const c of [...candidates]) {
    const alias = PRICING_ALIASES[c];
    if (alias) candidates.add(alias);
  }
  for (const c of candidates) {
    const entry = PRICING_TABLE[c];
    if (entry) return fromEntry(entry, `table@${PRICING_TABLE_VERSION}`);
  }
  return undefined;
}

/**
 * The price of a model: a config override (missing cache rates fall back to the table entry
 * for the same model, else to the input rate: no discount assumed), else the built-in table by
 * the model's name or its `upstreamName`. `undefined` when nothing prices it.
 */
export function resolvePrice(
  modelName: string,
  overrides: Readonly<Record<string, PricedModel | PriceOverride>> = {},
): Price | undefined {
  const entry = overrides[modelName];
  const override = entry === undefined ? undefined : 'inputPerMTok' in entry ? entry : entry.pricing;
  const upstream = entry !== undefined && 'upstreamName' in entry ? entry.upstreamName : undefined;
  const table = tablePrice(modelName) ?? (upstream ? tablePrice(upstream) : undefined);
  if (!override) return table;
  const input = usdPerMTokToMicros(override.inputPerMTok);
  return {
    inputMicrosPerMTok: input,
    outputMicrosPerMTok: usdPerMTokToMicros(override.outputPerMTok),
    cachedInputMicrosPerMTok:
      override.cachedInputPerMTok !== undefined ? usdPerMTokToMicros(override.cachedInputPerMTok) : (table?.cachedInputMicrosPerMTok ?? input),
    cacheWriteMicrosPerMTok:
      override.cacheWritePerMTok !== undefined ? usdPerMTokToMicros(override.cacheWritePerMTok) : (table?.cacheWriteMicrosPerMTok ?? input),
    source: 'config',
  };
}
