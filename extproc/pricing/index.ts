/**
 * @module pricing
 * Prices and costs: the built-in table, config overrides, integer micro-dollar arithmetic.
 */
export { PRICING_TABLE, PRICING_TABLE_VERSION, PRICING_ALIASES } from './table.js';
export type { PriceEntry } from './table.js';
export { resolvePrice, tablePrice, usdPerMTokToMicros } from './price.js';
export type { Price, PriceOverride, PricedModel } from './price.js';
export { cost, usageFromOpenAi, formatMicros } from './cost.js';
export type { TokenUsage } from './cost.js';
