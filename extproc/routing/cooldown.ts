/**
 * @module routing/cooldown
 * Steps that just failed (429, 529, 5xx) are cooled: new requests start their chain at the
 * first step that is not cooled (a later `chain_<route>_from_<k>` cluster), instead of paying
 * the failed attempt again. The state is shared: in memory for one replica, Redis for many.
 *
 * Keys are `<provider>/<model>` (ChainStep.cooldownKey); values are the time the cooldown ends.
 */

export interface CooldownStore {
  /** Cools `key` until `untilMs` (epoch ms). A later end already recorded is kept. */
  cool(key: string, untilMs: number): Promise<void>;
  /** The keys among `keys` cooled at `nowMs`. */
  cooledAmong(keys: readonly string[], nowMs: number): Promise<ReadonlySet<string>>;
  close(): Promise<void>;
}

/** How long a failure cools a step. */
export interface CooldownPolicy {
  /** 429 without a usable `retry-after`. */
  readonly rateLimitedMs: number;
  /** 5xx and 529. */
  readonly serverErrorMs: number;
  /** Upper bound, also for `retry-after` (a provider asking for an hour should not empty a chain for an hour). */
  readonly maxMs: number;
}

export const defaultCooldownPolicy: CooldownPolicy = { rateLimitedMs: 10_000, serverErrorMs: 5_000, maxMs: 300_000 };

/** `retry-after` as seconds or an HTTP date → ms from now, or undefined. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,9}(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs);
}

/**
 * When a response with `status` should cool its step: the end time, or undefined when it should
 * not (2xx, and 4xx other than 429: those are about the request, not the provider).
 */
export function cooldownUntil(
  status: number,
  retryAfter: string | undefined,
  nowMs: number,
  policy: CooldownPolicy = defaultCooldownPolicy,
): number | undefined {
  let ms: number | undefined;
  if (status === 429) ms = parseRetryAfter(retryAfter, nowMs) ?? policy.rateLimitedMs;
  else if (status >= 500 && status <= 599) ms = parseRetryAfter(retryAfter, nowMs) ?? policy.serverErrorMs;
  if (ms === undefined || ms <= 0) return undefined;
  return nowMs + Math.min(ms, policy.maxMs);
}

/** One replica's cooldowns. */
export class MemoryCooldownStore implements CooldownStore {
  private readonly until = new Map<string, number>();

  cool(key: string, untilMs: number): Promise<void> {
    if ((this.until.get(key) ?? 0) < untilMs) this.until.set(key, untilMs);
    return Promise.resolve();
  }

  /** Synchronous read (the in-memory store needs no await). */
  cooledNow(keys: readonly string[], nowMs: number): Set<string> {
    const out = new Set<string>();
    for (const k of keys) {
      const u = this.until.get(k);
      if (u === undefined) continue;
      if (u > nowMs) out.add(k);
      else this.until.delete(k);
    }
    return out;
  }

  cooledAmong(keys: readonly string[], nowMs: number): Promise<ReadonlySet<string>> {
    return Promise.resolve(this.cooledNow(keys, nowMs));
  }

  close(): Promise<void> {
    this.until.clear();
    return Promise.resolve();
  }
}
