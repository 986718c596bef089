import { describe, expect, it } from 'vitest';
import { checkLimitConfig, parseRateLimitOptions } from '../../extproc/limits/index.js';

const base = ['pipeline', 'stages', 3];

describe('rate-limit options', () => {
  it('accepts a complete config and fills defaults', () => {
    const r = parseRateLimitOptions({
      name: 'rate-limit',
      backend: 'redis',
      redis: { url: 'redis://127.0.0.1:6379' },
      limits: [{ scope: 'caller', requestsPerMinute: 10, usdPerDay: 5.5 }],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.options.redis).toMatchObject({ timeoutMs: 50, failure: 'open', keyPrefix: 'llmgw:rl' });
    expect(r.options.defaultOutputTokens).toBe(4096);
  });

  it('a negative limit is an error naming the key', () => {
    const r = parseRateLimitOptions({ limits: [{ scope: 'caller', requestsPerMinute: 10 }, { scope: 'model', model: 'gpt-4o', inputTokensPerMinute: -5 }] }, base);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems.join('\n')).toMatch(/^pipeline\.stages\[3\]\.limits\[1\]\.inputTokensPerMinute: /m);
  });

  it('unknown keys, empty rules, redis without url, and too many decimals are errors with paths', () => {
    const r = parseRateLimitOptions({ backend: 'redis', limits: [{ scope: 'caller', rpm: 1 }, { scope: 'caller' }, { scope: 'caller', usdPerDay: 0.0000001 }] }, base);
    expect(r.ok).toBe(false);
    const text = !r.ok ? r.problems.join('\n') : '';
    expect(text).toContain('pipeline.stages[3].limits[0].rpm: unknown key');
    expect(text).toContain('pipeline.stages[3].limits[1]: sets no limit');
    expect(text).toContain('pipeline.stages[3].redis: required when backend is "redis"');
    expect(text).toContain('pipeline.stages[3].limits[2].usdPerDay: at most 6 decimals');
  });
});

describe('checkLimitConfig', () => {
  const catalog = {
    models: {
      'gpt-4o': {},
      'claude-opus-4': { upstreamName: 'claude-opus-4-20250514' },
      house: {},
      priced: { pricing: { inputPerMTok: 1, outputPerMTok: 2 } },
    },
    routes: [{ name: 'default-chain' }, {}],
  };
  const parse = (limits: unknown[]) => {
    const r = parseRateLimitOptions({ limits });
    if (!r.ok) throw new Error(r.problems.join('\n'));
    return r.options;
  };

  it('names an unknown model and an unknown route', () => {
    const problems = checkLimitConfig(parse([{ scope: 'model', model: 'x', requestsPerMinute: 1 }, { scope: 'route', route: 'nope', requestsPerMinute: 1 }]), catalog, base);
    expect(problems).toEqual([
      'pipeline.stages[3].limits[0].model: unknown model "x"',
      'pipeline.stages[3].limits[1].route: unknown route "nope"',
    ]);
  });

  it('a budget needs a price for every model it can meet (config or built-in table)', () => {
    expect(checkLimitConfig(parse([{ scope: 'caller', usdPerDay: 1 }]), catalog, base)).toEqual([
      'pipeline.stages[3].limits[0].usdPerDay: budget needs a price for model "house" (set models.house.pricing)',
    ]);
    expect(checkLimitConfig(parse([{ scope: 'caller-model', model: 'priced', usdPerMonth: 1 }, { scope: 'caller-model', model: 'claude-opus-4', usdPerDay: 1 }]), catalog, base)).toEqual([]);
    expect(checkLimitConfig(parse([{ scope: 'caller-model', model: 'house', usdPerMonth: 1 }]), catalog, base)).toEqual([
      'pipeline.stages[3].limits[0].usdPerMonth: budget needs a price for model "house" (set models.house.pricing)',
    ]);
  });
});
