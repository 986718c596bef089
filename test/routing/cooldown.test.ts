/** Cooldowns: when a response cools a step, and both stores (in memory, Redis shared by replicas). */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cooldownUntil, MemoryCooldownStore, parseRetryAfter, type CooldownStore } from '../../extproc/routing/cooldown.js';
import { RedisCooldownStore } from '../../extproc/routing/redisCooldown.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const policy = { rateLimitedMs: 10_000, serverErrorMs: 5_000, maxMs: 60_000 };

describe('cooldownUntil', () => {
  const now = 1_000_000;
  it('cools 429 for retry-after (seconds or HTTP date), capped; 5xx and 529 by policy', () => {
    expect(cooldownUntil(429, '7', now, policy)).toBe(now + 7000);
    expect(cooldownUntil(429, new Date(now + 20_000).toUTCString(), now, policy)).toBe(now + 20_000);
    expect(cooldownUntil(429, undefined, now, policy)).toBe(now + 10_000);
    expect(cooldownUntil(429, 'soon', now, policy)).toBe(now + 10_000);
    expect(cooldownUntil(429, '86400', now, policy)).toBe(now + 60_000);
    expect(cooldownUntil(503, undefined, now, policy)).toBe(now + 5_000);
    expect(cooldownUntil(529, undefined, now, policy)).toBe(now + 5_000);
  });
  it('never cools for success or for errors caused by the request', () => {
    for (const s of [200, 400, 401, 403, 404, 413]) expect(cooldownUntil(s, '5', now, policy)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBe(1500);
  });
});

async function exercise(a: CooldownStore, b: CooldownStore): Promise<void> {
  const now = Date.now();
  const keys = ['anthropic/claude-opus-4', 'openai/gpt-4o'];
  expect([...(await a.cooledAmong(keys, now))]).toEqual([]);
  await a.cool(keys[0]!, now + 5_000);
  expect([...(await b.cooledAmong(keys, now))]).toEqual([keys[0]]);
  // A shorter cooldown recorded later keeps the longer one.
  await b.cool(keys[0]!, now + 1_000);
  expect([...(await a.cooledAmong(keys, now + 2_000))]).toEqual([keys[0]]);
  // Over after its end.
  expect([...(await a.cooledAmong(keys, now + 5_001))]).toEqual([]);
}

describe('MemoryCooldownStore', () => {
  it('cools and forgets', async () => {
    const s = new MemoryCooldownStore();
    await exercise(s, s);
    expect(s.cooledNow(['x'], Date.now()).size).toBe(0);
  });
});

describe('RedisCooldownStore', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit()));
    await server.stop();
  });
  const client = (): Redis => {
    const c = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    clients.push(c);
    return c;
  };

  it('shares cooldowns between two replicas (two clients)', async () => {
    const prefix = `t1:${Date.now()}:`;
    await exercise(new RedisCooldownStore(client(), { prefix }), new RedisCooldownStore(client(), { prefix }));
  });

  it('lets Redis expire the key at the end of the cooldown', async () => {
    const r = client();
    const s = new RedisCooldownStore(r, { prefix: 'exp:' });
    await s.cool('p/m', Date.now() + 60_000);
    const ttl = await r.pttl('exp:p/m');
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('serves reads from a snapshot within cacheMs, and sees its own writes at once', async () => {
    const prefix = `t3:${Date.now()}:`;
    const a = new RedisCooldownStore(client(), { prefix, cacheMs: 60_000 });
    const b = new RedisCooldownStore(client(), { prefix });
    const keys = ['p/m1', 'p/m2'];
    const now = Date.now();
    expect((await a.cooledAmong(keys, now)).size).toBe(0);
    await b.cool('p/m1', now + 30_000);
    // a's snapshot is younger than cacheMs: b's write is not seen yet (documented delay)...
    expect((await a.cooledAmong(keys, now + 1)).size).toBe(0);
    // ...but a's own write is.
    await a.cool('p/m2', now + 30_000);
    expect([...(await a.cooledAmong(keys, now + 2))]).toEqual(['p/m2']);
    // A fresh store reads both.
    expect([...(await new RedisCooldownStore(client(), { prefix }).cooledAmong(keys, now + 3))].sort()).toEqual(['p/m1', 'p/m2']);
  });
});
