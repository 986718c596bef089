/**
 * @module limits/failover
 * Redis first, and a policy for when Redis is not there: `open` (an in-memory limiter with the
 * same limits decides, per replica) or `closed` (deny with 429).
 *
 * No request waits on a dead Redis longer than the client's command timeout, and most wait not
 * at all: while the connection is down the client refuses at once (no offline queue), and after
 * a timeout (a hung Redis) calls skip Redis for `probeIntervalMs` but one, which probes.
 * Transitions are logged once each way (never per request) and counted in `stats`.
 * A reservation is settled where it was made: one taken by the local limiter settles locally
 * even after Redis is back; a Redis reservation whose settlement fails is counted as lost (its
 * slot expires with its lease, its tokens stay at the estimate).
 */
import { describeError } from '../telemetry/logger.js';
import type { Logger } from '../telemetry/logger.js';
import type { MemoryLimiter } from './memory.js';
import type { RedisLimiter } from './redis.js';
import type { BudgetUsage, Decision, LimitAmounts, Limiter, Reservation, ReserveRequest } from './types.js';

export interface FailoverOptions {
  readonly failure: 'open' | 'closed';
  readonly logger?: Logger | undefined;
  /** After a failure, calls go straight to the policy for this long, except one probe (default 1000 ms). */
  readonly probeIntervalMs?: number;
  /** `retry-after` of a request denied because Redis is down and the policy is closed (default 1000 ms). */
  readonly closedRetryMs?: number;
  readonly clock?: () => number;
}

/** What the failover has done (for metrics). */
export interface FailoverStats {
  /** Calls to Redis that failed (error or timeout). */
  redisErrors: number;
  /** Decisions made by the local limiter (failure: open). */
  localDecisions: number;
  /** Requests denied because Redis was down (failure: closed). */
  unavailableDenials: number;
  /** Settlements or releases of Redis reservations that could not reach Redis. */
  lostSettlements: number;
  /** Times the limiter went from healthy to degraded. */
  outages: number;
  degraded: boolean;
}

export class FailoverLimiter implements Limiter {
  readonly stats: FailoverStats = { redisErrors: 0, localDecisions: 0, unavailableDenials: 0, lostSettlements: 0, outages: 0, degraded: false };
  private skipUntil = 0;
  private probing = false;
  private readonly probeIntervalMs: number;
  private readonly closedRetryMs: number;
  private readonly clock: () => number;

  constructor(
    readonly primary: RedisLimiter,
    readonly local: MemoryLimiter,
    private readonly options: FailoverOptions,
  ) {
    this.probeIntervalMs = options.probeIntervalMs ?? 1000;
    this.closedRetryMs = options.closedRetryMs ?? 1000;
    this.clock = options.clock ?? Date.now;
  }

  async reserve(request: ReserveRequest): Promise<Decision> {
    if (this.shouldTry()) {
      const probe = this.stats.degraded;
      if (probe) this.probing = true;
      try {
        const d = await this.primary.reserve(request);
        this.healthy();
        return d;
      } catch (err) {
        this.failed(err);
      } finally {
        if (probe) this.probing = false;
      }
    }
    if (this.options.failure === 'closed') {
      this.stats.unavailableDenials++;
      const hit = { rule: -1, scope: 'limiter', metric: 'unavailable', limit: 0, used: 0 } as const;
      return { admitted: false, retryAfterMs: this.closedRetryMs, limit: hit, hits: [hit], info: {} };
    }
    this.stats.localDecisions++;
    return this.local.reserveSync(request);
  }

  async settle(reservation: Reservation, actual: LimitAmounts, now?: number): Promise<void> {
    if (reservation.backend === 'memory') return this.local.settle(reservation, actual, now);
    try {
      await this.primary.settle(reservation, actual, now);
    } catch (err) {
      this.stats.lostSettlements++;
      this.failed(err);
    }
  }

  async release(reservation: Reservation, now?: number): Promise<void> {
    if (reservation.backend === 'memory') return this.local.release(reservation, now);
    try {
      await this.primary.release(reservation, now);
    } catch (err) {
      this.stats.lostSettlements++;
      this.failed(err);
    }
  }

  async usage(keys: Parameters<Limiter['usage']>[0], now?: number): Promise<BudgetUsage> {
    if (this.shouldTry()) {
      try {
        const u = await this.primary.usage(keys, now);
        this.healthy();
        return u;
      } catch (err) {
        this.failed(err);
      }
    }
    return this.local.usage(keys, now);
  }

  /** Waits for the first Redis connection (startup); rejects after `timeoutMs` (the policy applies meanwhile). */
  ready(timeoutMs?: number): Promise<void> {
    return this.primary.ready(timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.local.close()]);
  }

  private shouldTry(): boolean {
    if (!this.primary.connected) {
      // Down without a failed call (the connection dropped between requests): same transition.
      if (!this.stats.degraded) this.failed(new Error(`redis connection ${this.primary.client.status}`));
      return false;
    }
    if (!this.stats.degraded) return true;
    // Degraded but connected: one probe at a time once the interval has passed.
    return !this.probing && this.clock() >= this.skipUntil;
  }

  private healthy(): void {
    if (!this.stats.degraded) return;
    this.stats.degraded = false;
    this.options.logger?.info('rate limiter: redis reachable again, shared limits restored');
  }

  private failed(err: unknown): void {
    this.stats.redisErrors++;
    this.skipUntil = this.clock() + this.probeIntervalMs;
    if (this.stats.degraded) return;
    this.stats.degraded = true;
    this.stats.outages++;
    this.options.logger?.warn(
      this.options.failure === 'open'
        ? 'rate limiter: redis unavailable, failing open to per-replica in-memory limits'
        : 'rate limiter: redis unavailable, failing closed (requests denied)',
      { error: describeError(err) },
    );
  }
}
