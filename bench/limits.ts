// Limiter bench: added latency per request (reserve + settle) p50/p99, in memory and on Redis
// over loopback (a redis-server started here, no persistence). One limit set of a realistic
// shape: per caller rpm + tokens + concurrency + daily budget, per caller+model tpm, global per model.
// Run: npx tsx bench/limits.ts
import { MemoryLimiter, RedisLimiter } from '../extproc/limits/index.js';
import type { Limiter, RateLimitOptions } from '../extproc/limits/index.js';
import { startRedis } from '../test/helpers/redis.js';

const limits: RateLimitOptions['limits'] = [
  { scope: 'caller', requestsPerMinute: 1e9, inputTokensPerMinute: 1e12, outputTokensPerMinute: 1e12, concurrentStreams: 1e6, usdPerDay: 1e6 },
  { scope: 'caller-model', inputTokensPerMinute: 1e12 },
  { scope: 'model', requestsPerMinute: 1e9, concurrentStreams: 1e6 },
];
const est = { inputTokens: 800, outputTokens: 1024, costMicros: 12_000 };
const act = { inputTokens: 800, outputTokens: 300, costMicros: 5_000 };

function pct(a: number[], p: number): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function run(name: string, l: Limiter, n: number, unit: 'µs' | 'ms'): Promise<void> {
  const callers = 200;
  for (let i = 0; i < 2000; i++) {
    const d = await l.reserve({ caller: `c${i % callers}`, model: 'gpt-4o', estimate: est });
    if (d.admitted) await l.settle(d.reservation, act);
  }
  const res: number[] = [];
  const set: number[] = [];
  const tot: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const d = await l.reserve({ caller: `c${i % callers}`, model: i % 2 ? 'gpt-4o' : 'claude-opus-4', estimate: est });
    const t1 = performance.now();
    if (!d.admitted) throw new Error('bench limits must not refuse');
    await l.settle(d.reservation, act);
    const t2 = performance.now();
    res.push(t1 - t0);
    set.push(t2 - t1);
    tot.push(t2 - t0);
  }
  const f = (v: number): string => (unit === 'µs' ? `${(v * 1000).toFixed(1)} µs` : `${v.toFixed(3)} ms`);
  console.log(`${name.padEnd(8)} n=${n}  reserve p50 ${f(pct(res, 50))} p99 ${f(pct(res, 99))}  settle p50 ${f(pct(set, 50))} p99 ${f(pct(set, 99))}  reserve+settle p50 ${f(pct(tot, 50))} p99 ${f(pct(tot, 99))}`);
}

const mem = new MemoryLimiter({ limits });
await run('memory', mem, 100_000, 'µs');
await mem.close();

const server = await startRedis();
try {
  const redis = new RedisLimiter({ limits, redis: server.url, timeoutMs: 1000 });
  await redis.ready();
  await run('redis', redis, 20_000, 'ms');
  await redis.close();
} finally {
  await server.stop();
}
