import { describe, it, expect } from 'vitest';
import { cost, formatMicros, resolvePrice, tablePrice, usageFromOpenAi, usdPerMTokToMicros, PRICING_TABLE } from '../../extproc/pricing/index.js';

describe('usdPerMTokToMicros', () => {
  it('parses decimals exactly, without float error', () => {
    expect(usdPerMTokToMicros('0.075')).toBe(75_000);
    expect(usdPerMTokToMicros(0.1)).toBe(100_000);
    expect(usdPerMTokToMicros(18.75)).toBe(18_750_000);
    expect(usdPerMTokToMicros('15')).toBe(15_000_000);
    expect(usdPerMTokToMicros('0.000001')).toBe(1);
  });
  it('rejects negatives, junk and more than 6 decimals', () => {
    expect(() => usdPerMTokToMicros(-1)).toThrow(RangeError);
    expect(() => usdPerMTokToMicros('abc')).toThrow(RangeError);
    expect(() => usdPerMTokToMicros('0.0000001')).toThrow(RangeError);
  });
  it('every table entry parses', () => {
    for (const name of Object.keys(PRICING_TABLE)) expect(tablePrice(name), name).toBeDefined();
  });
});

describe('cost', () => {
  const gpt4o = resolvePrice('gpt-4o')!;
  const opus = resolvePrice('claude-opus-4')!;
  it('computes integer micro-dollars per kind of token', () => {
    // 1M input at $2.50 + 1M output at $10 = $12.50
    expect(cost({ inputTokens: 1_000_000, outputTokens: 1_000_000 }, gpt4o)).toBe(12_500_000);
    // Opus: 1000 in ($0.015) + 500 out ($0.0375) + 2000 cache read ($0.003) + 4000 cache write ($0.075)
    expect(cost({ inputTokens: 1000, outputTokens: 500, cachedInputTokens: 2000, cacheWriteTokens: 4000 }, opus)).toBe(15_000 + 37_500 + 3_000 + 75_000);
  });
  it('rounds once, half up, on the exact sum (not per part)', () => {
    const mini = resolvePrice('gpt-4o-mini')!; // 0.15 µ$ per input token, 0.6 per output, 0.075 cached
    expect(cost({ inputTokens: 1, outputTokens: 0 }, mini)).toBe(0); // 0.15 → 0
    expect(cost({ inputTokens: 4, outputTokens: 0 }, mini)).toBe(1); // 0.6 → 1
    expect(cost({ inputTokens: 10, outputTokens: 0 }, mini)).toBe(2); // 1.5 → 2 (half up)
    expect(cost({ inputTokens: 3, outputTokens: 0 }, mini)).toBe(0); // 0.45 → 0
    // rounding each part would give 0 + 0 = 0; the exact sum 0.45 + 0.225 = 0.675 → 1
    expect(cost({ inputTokens: 3, outputTokens: 0, cachedInputTokens: 3 }, mini)).toBe(1);
  });
  it('is exact far beyond float precision', () => {
    const p = resolvePrice('o4-mini')!; // 0.275 cached
    // 3 × 10^9 cached tokens × 275000 µ$/MTok = 825,000,000 µ$ exactly
    expect(cost({ inputTokens: 0, outputTokens: 0, cachedInputTokens: 3_000_000_000 }, p)).toBe(825_000_000);
    // summing floats 0.1+0.2 style: 1 token at $0.10 + 2 at $0.10 → 0.3 µ$ → 0, and 10^6 of each → exact
    const nano = resolvePrice('gpt-4.1-nano')!;
    expect(cost({ inputTokens: 1_000_000, outputTokens: 2_000_000 }, nano)).toBe(100_000 + 800_000);
  });
  it('rejects fractional or negative token counts', () => {
    expect(() => cost({ inputTokens: 1.5, outputTokens: 0 }, gpt4o)).toThrow(RangeError);
    expect(() => cost({ inputTokens: -1, outputTokens: 0 }, gpt4o)).toThrow(RangeError);
  });
  it('splits OpenAI usage (prompt includes cached) into billing kinds', () => {
    expect(usageFromOpenAi(1000, 10, 400)).toEqual({ inputTokens: 600, outputTokens: 10, cachedInputTokens: 400 });
    // 600 × 2.5 + 10 × 10 + 400 × 1.25 = 1500 + 100 + 500 µ$
    expect(cost(usageFromOpenAi(1000, 10, 400), gpt4o)).toBe(2100);
  });
  it('formats micro-dollars without floats', () => {
    expect(formatMicros(12_500_000)).toBe('12.500000');
    expect(formatMicros(7)).toBe('0.000007');
  });
});

describe('resolvePrice', () => {
  it('finds dated snapshots, -latest and aliases in the table', () => {
    expect(resolvePrice('claude-sonnet-4-20250514')?.inputMicrosPerMTok).toBe(3_000_000);
    expect(resolvePrice('gpt-4o-2024-08-06')?.outputMicrosPerMTok).toBe(10_000_000);
    expect(resolvePrice('mistral-large-latest')?.inputMicrosPerMTok).toBe(2_000_000);
    expect(resolvePrice('mistral-small-2503')?.inputMicrosPerMTok).toBe(100_000);
    expect(resolvePrice('gpt-4o-mini')?.inputMicrosPerMTok).toBe(150_000);
    expect(resolvePrice('no-such-model')).toBeUndefined();
  });
  it('uses config overrides first, by catalog name, filling cache rates from the table', () => {
    const catalog = {
      'claude-opus-4': { upstreamName: 'claude-opus-4-20250514', pricing: { inputPerMTok: 10, outputPerMTok: 50 } },
      house: { pricing: { inputPerMTok: 1, outputPerMTok: 2 } },
      'my-sonnet': { upstreamName: 'claude-sonnet-4-20250514' },
    };
    const opus = resolvePrice('claude-opus-4', catalog)!;
    expect(opus.source).toBe('config');
    expect(opus.inputMicrosPerMTok).toBe(10_000_000);
    expect(opus.cachedInputMicrosPerMTok).toBe(1_500_000);
    const house = resolvePrice('house', catalog)!;
    expect(house.cachedInputMicrosPerMTok).toBe(1_000_000); // no table entry: no discount assumed
    expect(resolvePrice('my-sonnet', catalog)?.source).toMatch(/^table@/);
    expect(resolvePrice('my-sonnet', catalog)?.outputMicrosPerMTok).toBe(15_000_000);
  });
});
