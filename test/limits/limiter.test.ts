// One suite, both backends: the in-memory limiter and the Redis limiter (a real redis-server)
// must give the same answers. Time is injected (`now`), never slept on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLimiter, RedisLimiter, decisionHeaders } from '../../extproc/limits/index.js';
import type { Decision, Limiter, RateLimitOptions, Reservation } from '../../extproc/limits/index.js';
import { startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';

type Limits = RateLimitOptions['limits'];
const T0 = Date.UTC(2026, 10, 30, 12, 0, 0); // a minute boundary, mid-day UTC
const MIN = 60_000;
const est = (inputTokens = 10, outputTokens = 10, costMicros = 0) => ({ inputTokens, outputTokens, costMicros });
const rule = (r: Partial<Limits[number]> & Pick<Limits[number], 'scope'>): Limits[number] => r as Limits[number];

function admitted(d: Decision): Reservation {
  if (!d.admitted) throw new Error(`denied: ${d.limit.metric}`);
  return d.reservation;
}

let redis: RedisServer;
let prefixSeq = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const backends: [string, (limits: Limits) => Promise<Limiter>][] = [
  ['memory', async (limits) => new MemoryLimiter({ limits, clock: () => T0 })],
  [
    'redis',
    async (limits) => {
      const l = new RedisLimiter({ limits, redis: redis.url, keyPrefix: `t${++prefixSeq}`, clock: () => T0, timeoutMs: 2000 });
      await l.ready();
      return l;
    },
  ],
];

describe.each(backends)('%s limiter', (_name, make) => {
  it('100 concurrent requests against 10 per minute: exactly 10 admitted', async () => {
    const l = await make([rule({ scope: 'caller', requestsPerMinute: 10 })]);
    const ds = await Promise.all(Array.from({ length: 100 }, () => l.reserve({ caller: 'a', model: 'gpt-4o', estimate: est(), now: T0 + 5_000 })));
    expect(ds.filter((d) => d.admitted)).toHaveLength(10);
    const denied = ds.find((d) => !d.admitted);
    expect(denied && !denied.admitted && denied.limit.metric).toBe('requestsPerMinute');
    expect(denied && !denied.admitted && denied.retryAfterMs).toBe(55_000);
    // other callers have their own counter; the next window admits again
    expect((await l.reserve({ caller: 'b', model: 'gpt-4o', estimate: est(), now: T0 + 5_000 })).admitted).toBe(true);
    expect((await l.reserve({ caller: 'a', model: 'gpt-4o', estimate: est(), now: T0 + MIN })).admitted).toBe(true);
    await l.close();
  });

  it('reports OpenAI-style header figures and retry-after', async () => {
    const l = await make([rule({ scope: 'caller', requestsPerMinute: 2, inputTokensPerMinute: 100 })]);
    const d1 = await l.reserve({ caller: 'a', model: 'm', estimate: est(30, 0), now: T0 + 1_000 });
    expect(decisionHeaders(d1)).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '59s',
      'x-ratelimit-limit-tokens': '100',
      'x-ratelimit-remaining-tokens': '70',
      'x-ratelimit-reset-tokens': '59s',
    });
    await l.reserve({ caller: 'a', model: 'm', estimate: est(30, 0), now: T0 + 1_000 });
    const d3 = await l.reserve({ caller: 'a', model: 'm', estimate: est(30, 0), now: T0 + 30_500 });
    expect(d3.admitted).toBe(false);
    expect(decisionHeaders(d3)['retry-after']).toBe('30');
    expect(decisionHeaders(d3)['x-ratelimit-remaining-requests']).toBe('0');
    await l.close();
  });

  it('a refused request reserves nothing on any counter', async () => {
    const l = await make([rule({ scope: 'caller', requestsPerMinute: 5, inputTokensPerMinute: 100 })]);
    admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(90, 0), now: T0 }));
    const d = await l.reserve({ caller: 'a', model: 'm', estimate: est(20, 0), now: T0 });
    expect(d.admitted).toBe(false);
    // the refused request did not take a request slot: 4 more fit under 5/min with small estimates
    for (let i = 0; i < 4; i++) admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(2, 0), now: T0 }));
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0), now: T0 })).admitted).toBe(false);
    await l.close();
  });

  it('settles tokens to actual usage: an overrun is seen by the next request, a shortfall refunded', async () => {
    const l = await make([rule({ scope: 'caller', outputTokensPerMinute: 1000 })]);
    const r = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(10, 100), now: T0 }));
    await l.settle(r, est(10, 950), T0 + 1_000);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(10, 100), now: T0 + 2_000 })).admitted).toBe(false);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(10, 50), now: T0 + 2_000 })).admitted).toBe(true);
    // refund: reserve 900, use 100 → 800 back
    const l2 = await make([rule({ scope: 'caller', outputTokensPerMinute: 1000 })]);
    const r2 = admitted(await l2.reserve({ caller: 'a', model: 'm', estimate: est(0, 900), now: T0 }));
    expect((await l2.reserve({ caller: 'a', model: 'm', estimate: est(0, 500), now: T0 })).admitted).toBe(false);
    await l2.settle(r2, est(0, 100), T0 + 1);
    expect((await l2.reserve({ caller: 'a', model: 'm', estimate: est(0, 500), now: T0 + 2 })).admitted).toBe(true);
    await Promise.all([l.close(), l2.close()]);
  });

  it('an overrun settled after the window rolled is charged to the current window', async () => {
    const l = await make([rule({ scope: 'caller', inputTokensPerMinute: 1000 })]);
    const r = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(100, 0), now: T0 + 50_000 }));
    await l.settle(r, est(990, 0), T0 + MIN + 1_000); // a long stream ending in the next minute
    // the 890 not reserved land in the new minute: 890 + 200 > 1000, 890 + 100 fits
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(200, 0), now: T0 + MIN + 2_000 })).admitted).toBe(false);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(100, 0), now: T0 + MIN + 2_000 })).admitted).toBe(true);
    // a refund after the window rolled is dropped (the old window is gone)
    const r2 = admitted(await l.reserve({ caller: 'b', model: 'm', estimate: est(900, 0), now: T0 + MIN + 50_000 }));
    await l.settle(r2, est(0, 0), T0 + 2 * MIN + 1);
    expect((await l.reserve({ caller: 'b', model: 'm', estimate: est(1000, 0), now: T0 + 2 * MIN + 2 })).admitted).toBe(true);
    await l.close();
  });

  it('settle and release are idempotent; release refunds the request too', async () => {
    const l = await make([rule({ scope: 'caller', requestsPerMinute: 1, inputTokensPerMinute: 100 })]);
    const r = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(60, 0), now: T0 }));
    await l.release(r, T0);
    await l.release(r, T0);
    await l.settle(r, est(0, 0), T0);
    const r2 = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(60, 0), now: T0 }));
    // settled (served): the request still counts, the tokens settle to actual
    await l.settle(r2, est(60, 0), T0);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(1, 0), now: T0 })).admitted).toBe(false);
    await l.close();
  });

  it('concurrency slots are freed on settle and on release', async () => {
    const l = await make([rule({ scope: 'caller', concurrentStreams: 2 })]);
    const a = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 }));
    const b = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 }));
    const c = await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 });
    expect(c.admitted).toBe(false);
    expect(!c.admitted && c.limit.metric).toBe('concurrentStreams');
    expect(!c.admitted && c.retryAfterMs).toBe(1000);
    await l.settle(a, est(), T0 + 10);
    admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 + 20 }));
    await l.release(b, T0 + 30);
    admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 + 40 }));
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 + 50 })).admitted).toBe(false);
    await l.close();
  });

  it('a slot never settled (a crashed replica) expires with its lease', async () => {
    const l = await make([rule({ scope: 'caller', concurrentStreams: 1 })]);
    admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 }));
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 + 60_000 })).admitted).toBe(false);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(), now: T0 + 15 * MIN + 1 })).admitted).toBe(true);
    await l.close();
  });

  it('daily USD budget: denied once spent, until the UTC day rolls; usage() reports the fraction', async () => {
    const l = await make([rule({ scope: 'caller', usdPerDay: 1 })]);
    const r = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0, 300_000), now: T0 }));
    expect((await l.usage('a', T0)).maxFraction).toBeCloseTo(0.3);
    await l.settle(r, est(0, 0, 850_000), T0 + 1);
    const u = await l.usage({ caller: 'a' }, T0 + 2);
    expect(u.budgets).toEqual([{ rule: 0, scope: 'caller', period: 'day', usedMicros: 850_000, limitMicros: 1_000_000, fraction: 0.85 }]);
    // not yet spent: still admitted (budgets refuse only at 100%), and this one overspends
    const r2 = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0, 100_000), now: T0 + 3 }));
    await l.settle(r2, est(0, 0, 200_000), T0 + 4);
    const d = await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0, 1), now: T0 + 5 });
    expect(d.admitted).toBe(false);
    expect(!d.admitted && d.limit.metric).toBe('usdPerDay');
    expect(!d.admitted && d.retryAfterMs).toBe(12 * 3600_000 - 5);
    const tomorrow = Date.UTC(2026, 11, 1, 0, 0, 1);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0, 1), now: tomorrow })).admitted).toBe(true);
    expect((await l.usage('a', tomorrow)).maxFraction).toBeCloseTo(0.000001);
    await l.close();
  });

  it('monthly budget rolls on the calendar month', async () => {
    const l = await make([rule({ scope: 'caller', usdPerMonth: 2 })]);
    const r = admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0, 2_000_000), now: T0 }));
    await l.settle(r, est(0, 0, 2_000_000), T0);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0, 1), now: Date.UTC(2026, 10, 30, 23, 59) })).admitted).toBe(false);
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(0, 0, 1), now: Date.UTC(2026, 11, 1) })).admitted).toBe(true);
    await l.close();
  });

  it('scopes: caller+model, route and global per-model counters', async () => {
    const l = await make([
      rule({ scope: 'caller-model', model: 'gpt-4o', requestsPerMinute: 1 }),
      rule({ scope: 'model', model: 'claude-opus-4', requestsPerMinute: 2 }),
      rule({ scope: 'route', route: 'batch', requestsPerMinute: 1 }),
    ]);
    const go = (caller: string, model: string, route?: string) => l.reserve({ caller, model, route, estimate: est(), now: T0 });
    expect((await go('a', 'gpt-4o')).admitted).toBe(true);
    expect((await go('a', 'gpt-4o')).admitted).toBe(false); // a × gpt-4o spent
    expect((await go('a', 'gpt-4o-mini')).admitted).toBe(true); // other model: unlimited
    expect((await go('b', 'gpt-4o')).admitted).toBe(true); // other caller: own counter
    expect((await go('a', 'claude-opus-4')).admitted).toBe(true);
    expect((await go('b', 'claude-opus-4')).admitted).toBe(true);
    const d = await go('c', 'claude-opus-4'); // global per-model: shared by all callers
    expect(!d.admitted && d.limit).toMatchObject({ rule: 1, scope: 'model' });
    expect((await go('a', 'x', 'batch')).admitted).toBe(true);
    expect((await go('b', 'y', 'batch')).admitted).toBe(false);
    expect((await go('b', 'y', 'interactive')).admitted).toBe(true);
    await l.close();
  });

  it('a request no limit applies to is admitted with nothing reserved', async () => {
    const l = await make([rule({ scope: 'model', model: 'gpt-4o', requestsPerMinute: 0 })]);
    const r = admitted(await l.reserve({ caller: 'a', model: 'other', estimate: est(1.5, 2.2), now: T0 }));
    expect(r.counters).toEqual([]);
    await l.settle(r, est(), T0);
    expect((await l.reserve({ caller: 'a', model: 'gpt-4o', estimate: est(), now: T0 })).admitted).toBe(false); // a zero limit refuses all
    await l.close();
  });

  it('fractional estimates are rounded up to whole tokens', async () => {
    const l = await make([rule({ scope: 'caller', inputTokensPerMinute: 3 })]);
    admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(1.2, 0), now: T0 }));
    admitted(await l.reserve({ caller: 'a', model: 'm', estimate: est(0.5, 0), now: T0 }));
    expect((await l.reserve({ caller: 'a', model: 'm', estimate: est(0.1, 0), now: T0 })).admitted).toBe(false);
    await l.close();
  });

  it('caller-model budgets show in usage() for that model only', async () => {
    const l = await make([rule({ scope: 'caller', usdPerDay: 10 }), rule({ scope: 'caller-model', model: 'claude-opus-4', usdPerDay: 1 })]);
    const r = admitted(await l.reserve({ caller: 'a', model: 'claude-opus-4', estimate: est(0, 0, 900_000), now: T0 }));
    await l.settle(r, est(0, 0, 900_000), T0);
    expect((await l.usage({ caller: 'a', model: 'claude-opus-4' }, T0)).maxFraction).toBeCloseTo(0.9);
    expect((await l.usage('a', T0)).maxFraction).toBeCloseTo(0.09);
    await l.close();
  });
});
