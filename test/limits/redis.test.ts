// Redis-only behaviour: limits shared by replicas, and what happens when Redis dies or hangs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FailoverLimiter, RedisLimiter, createLimiter, rateLimitOptionsSchema } from '../../extproc/limits/index.js';
import type { Decision, Limiter } from '../../extproc/limits/index.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';

const est = { inputTokens: 10, outputTokens: 10, costMicros: 0 };
const limits = [{ scope: 'caller' as const, requestsPerMinute: 10 }];

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Times a call; the failure policy must answer within `bound` whatever Redis does. */
async function timed(l: Limiter, caller: string): Promise<{ d: Decision; ms: number }> {
  const s = performance.now();
  const d = await l.reserve({ caller, model: 'm', estimate: est });
  return { d, ms: performance.now() - s };
}

describe('redis limiter across replicas', () => {
  it('two gateway instances (two clients) sharing one Redis admit 10 in total, never 20', async () => {
    const now = Date.now();
    const a = new RedisLimiter({ limits, redis: redis.url, keyPrefix: 'shared', timeoutMs: 2000 });
    const b = new RedisLimiter({ limits, redis: redis.url, keyPrefix: 'shared', timeoutMs: 2000 });
    await Promise.all([a.ready(), b.ready()]);
    const ds = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).reserve({ caller: 'c', model: 'm', estimate: est, now })),
    );
    expect(ds.filter((d) => d.admitted)).toHaveLength(10);
    await Promise.all([a.close(), b.close()]);
  });

  it('reloads its scripts after Redis forgot them (SCRIPT FLUSH / restart)', async () => {
    const l = new RedisLimiter({ limits, redis: redis.url, keyPrefix: 'flush', timeoutMs: 2000 });
    await l.ready();
    expect((await l.reserve({ caller: 'c', model: 'm', estimate: est })).admitted).toBe(true);
    const admin = new Redis(redis.url);
    await admin.script('FLUSH');
    admin.disconnect();
    expect((await l.reserve({ caller: 'c', model: 'm', estimate: est })).admitted).toBe(true);
    await l.close();
  });

  it('a settled reservation is seen by the other replica', async () => {
    const now = Date.now();
    const tl = [{ scope: 'caller' as const, outputTokensPerMinute: 1000 }];
    const a = new RedisLimiter({ limits: tl, redis: redis.url, keyPrefix: 'settle', timeoutMs: 2000 });
    const b = new RedisLimiter({ limits: tl, redis: redis.url, keyPrefix: 'settle', timeoutMs: 2000 });
    await Promise.all([a.ready(), b.ready()]);
    const d = await a.reserve({ caller: 'c', model: 'm', estimate: { inputTokens: 0, outputTokens: 100, costMicros: 0 }, now });
    if (!d.admitted) throw new Error('denied');
    await a.settle(d.reservation, { inputTokens: 0, outputTokens: 990, costMicros: 0 }, now);
    expect((await b.reserve({ caller: 'c', model: 'm', estimate: { inputTokens: 0, outputTokens: 20, costMicros: 0 }, now })).admitted).toBe(false);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('redis failure policy', () => {
  function make(failure: 'open' | 'closed'): { limiter: FailoverLimiter; lines: string[] } {
    const lines: string[] = [];
    const options = rateLimitOptionsSchema.parse({
      backend: 'redis',
      redis: { url: redis.url, failure, timeoutMs: 50, keyPrefix: `fail-${failure}` },
      limits: [{ scope: 'caller', requestsPerMinute: 100_000 }],
    });
    const limiter = createLimiter(options, { logger: createLogger('info', (l) => lines.push(l)) });
    if (!(limiter instanceof FailoverLimiter)) throw new Error('expected a FailoverLimiter');
    return { limiter, lines };
  }

  it('open: Redis killed mid-load, no call waits past the timeout, the local limiter takes over, and Redis is used again after restart', async () => {
    const { limiter, lines } = make('open');
    await limiter.ready();
    let stop = false;
    const results: { d: Decision; ms: number }[] = [];
    const load = Array.from({ length: 8 }, async (_, w) => {
      while (!stop) {
        results.push(await timed(limiter, `caller-${w}`));
        // a local decision resolves without I/O: let timers (and the test) run between calls
        await new Promise((r) => setImmediate(r));
      }
    });
    await until(() => results.length > 200);
    await redis.kill();
    const atKill = results.length;
    await until(() => results.length > atKill + 200);
    await redis.restart();
    await until(() => limiter.primary.connected);
    const atRestart = results.length;
    // recovered: 50 decisions in a row from Redis (a probe that times out on a busy machine only delays this)
    const fromRedis = (r: { d: Decision }): boolean => r.d.admitted && r.d.reservation.backend === 'redis';
    await until(() => results.length > atRestart + 50 && results.slice(-50).every(fromRedis), 15_000);
    stop = true;
    await Promise.all(load);

    expect(results.every((r) => r.d.admitted)).toBe(true); // policy open: nothing refused
    expect(results.reduce((m, r) => Math.max(m, r.ms), 0)).toBeLessThan(1000); // no call hung (timeout 50 ms)
    const backends = results.map((r) => (r.d.admitted ? r.d.reservation.backend : 'denied'));
    expect(backends.slice(0, atKill)).toContain('redis');
    expect(backends.slice(atKill)).toContain('memory');
    expect(backends.slice(-50).every((b) => b === 'redis')).toBe(true);
    expect(limiter.stats.outages).toBeGreaterThanOrEqual(1);
    expect(limiter.stats.localDecisions).toBeGreaterThan(0);
    expect(limiter.stats.degraded).toBe(false);
    // logged once per transition, never per request
    const down = lines.filter((l) => l.includes('redis unavailable')).length;
    expect(down).toBe(limiter.stats.outages);
    expect(lines.filter((l) => l.includes('reachable again'))).toHaveLength(down);
    expect(down).toBeLessThan(5);
    await limiter.close();
  });

  it('closed: Redis down → 429 with retry-after; back → admitted', async () => {
    const { limiter, lines } = make('closed');
    await limiter.ready();
    expect((await timed(limiter, 'x')).d.admitted).toBe(true);
    await redis.kill();
    await until(() => !limiter.primary.connected);
    const { d, ms } = await timed(limiter, 'x');
    expect(d.admitted).toBe(false);
    expect(!d.admitted && d.limit.metric).toBe('unavailable');
    expect(!d.admitted && d.retryAfterMs).toBe(1000);
    expect(ms).toBeLessThan(1000);
    expect(limiter.stats.unavailableDenials).toBe(1);
    await redis.restart();
    await until(() => limiter.primary.connected);
    // calls reach Redis again once the probe interval has passed
    let back: Decision | undefined;
    for (let i = 0; i < 200 && !back?.admitted; i++) {
      back = (await timed(limiter, 'x')).d;
      if (!back.admitted) await new Promise((r) => setTimeout(r, 20));
    }
    expect(back?.admitted && back.reservation.backend).toBe('redis');
    expect(lines.filter((l) => l.includes('failing closed'))).toHaveLength(limiter.stats.outages);
    await limiter.close();
  });

  it('a reservation taken locally during an outage settles locally after Redis is back', async () => {
    const lines: string[] = [];
    const options = rateLimitOptionsSchema.parse({
      backend: 'redis',
      redis: { url: redis.url, failure: 'open', keyPrefix: 'local-settle' },
      limits: [{ scope: 'caller', concurrentStreams: 1 }],
    });
    const limiter = createLimiter(options, { logger: createLogger('info', (l) => lines.push(l)) }) as FailoverLimiter;
    await limiter.ready();
    await redis.kill();
    await until(() => !limiter.primary.connected);
    const d = await limiter.reserve({ caller: 'c', model: 'm', estimate: est });
    if (!d.admitted) throw new Error('denied');
    expect(d.reservation.backend).toBe('memory');
    expect((await limiter.reserve({ caller: 'c', model: 'm', estimate: est })).admitted).toBe(false); // local slot taken
    await redis.restart();
    await until(() => limiter.primary.connected);
    await limiter.settle(d.reservation, est);
    expect(limiter.stats.lostSettlements).toBe(0);
    // the local slot is free again (the local limiter decides only while Redis is down)
    expect((await limiter.local.reserve({ caller: 'c', model: 'm', estimate: est })).admitted).toBe(true);
    await limiter.close();
  });

  it('a hung Redis (SIGSTOP) costs one timeout, not a hang; later calls skip it until a probe succeeds', async () => {
    const { limiter } = make('open');
    await limiter.ready();
    redis.pause();
    try {
      const first = await timed(limiter, 'h');
      expect(first.d.admitted && first.d.reservation.backend).toBe('memory');
      expect(first.ms).toBeLessThan(1000);
      const second = await timed(limiter, 'h');
      expect(second.d.admitted && second.d.reservation.backend).toBe('memory');
      expect(limiter.stats.outages).toBe(1);
    } finally {
      redis.resume();
    }
    await limiter.close();
  });
});
