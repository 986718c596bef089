/**
 * @module routing/redisCooldown
 * Cooldowns shared by every replica through Redis: one key per step with the end time as value
 * and a matching PX expiry (so Redis forgets it by itself). A Lua script keeps the later end when
 * two replicas cool the same step. Reads are one MGET for all keys, optionally served from a
 * snapshot younger than `cacheMs` (a cooldown then reaches other replicas up to `cacheMs` late,
 * which saves a Redis round trip on every request).
 */
import type { Redis } from 'ioredis';
import type { CooldownStore } from './cooldown.js';

const COOL_SCRIPT = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1`;

export interface RedisCooldownOptions {
  /** Key prefix (default `gw:cooldown:`). */
  readonly prefix?: string;
  /** Serve reads from a snapshot this young (default 0: every read asks Redis). */
  readonly cacheMs?: number;
  /** Close the client on close() (default false: the caller owns it). */
  readonly ownsClient?: boolean;
}

export class RedisCooldownStore implements CooldownStore {
  private readonly prefix: string;
  private readonly cacheMs: number;
  private snapshot: { at: number; keys: readonly string[]; until: Map<string, number> } | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisCooldownOptions = {},
  ) {
    this.prefix = options.prefix ?? 'gw:cooldown:';
    this.cacheMs = options.cacheMs ?? 0;
  }

  async cool(key: string, untilMs: number): Promise<void> {
    const ttl = Math.max(1, Math.ceil(untilMs - Date.now()));
    await this.redis.eval(COOL_SCRIPT, 1, this.prefix + key, String(untilMs), String(ttl));
    const s = this.snapshot;
    if (s && (s.until.get(key) ?? 0) < untilMs) s.until.set(key, untilMs);
  }

  async cooledAmong(keys: readonly string[], nowMs: number): Promise<ReadonlySet<string>> {
    let s = this.snapshot;
    if (!s || s.keys !== keys || nowMs - s.at >= this.cacheMs) {
      const until = new Map<string, number>();
      if (keys.length > 0) {
        const values = await this.redis.mget(...keys.map((k) => this.prefix + k));
        values.forEach((v, i) => {
          const n = v === null ? NaN : Number(v);
          if (Number.isFinite(n)) until.set(keys[i]!, n);
        });
      }
      s = { at: nowMs, keys, until };
      if (this.cacheMs > 0) this.snapshot = s;
    }
    const out = new Set<string>();
    for (const k of keys) if ((s.until.get(k) ?? 0) > nowMs) out.add(k);
    return out;
  }

  async close(): Promise<void> {
    this.snapshot = undefined;
    if (this.options.ownsClient) await this.redis.quit();
  }
}
