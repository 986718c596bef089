/**
 * @module limits/redis
 * The Redis limiter: the same plan as the in-memory one, executed by one Lua script per call
 * (limits/lua.ts), so every replica sharing the Redis gives the same answer.
 *
 * Calls fail fast instead of queueing: `enableOfflineQueue: false` (no command waits for a
 * reconnect), `maxRetriesPerRequest: 0`, and `commandTimeout` = `timeoutMs` (50 ms by default).
 * ioredis reconnects on its own in the background. A failed call throws; `FailoverLimiter`
 * decides what that means (fail open or closed).
 *
 * Scripts go as EVALSHA; on NOSCRIPT (a restarted or flushed Redis) the script is sent once
 * with EVAL, which also loads it. A single Redis primary is assumed: the keys of one request
 * (caller, model, route) would span slots in Redis Cluster.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { lazyRequire } from '../lazyRequire.js';

const ioredis = lazyRequire<typeof import('ioredis')>('ioredis');
import { RESERVE_LUA, SETTLE_LUA } from './lua.js';
import { amountFor, budgetCounters, compileRules, newReservation, planCounters, rateLimitInfo, refusalOf, settleTarget } from './plan.js';
import type { CompiledRule } from './plan.js';
import type { RateLimitOptions } from './options.js';
import type { BudgetUsage, Decision, LimitAmounts, Limiter, Reservation, ReserveRequest } from './types.js';

export interface RedisLimiterOptions {
  readonly limits: RateLimitOptions['limits'];
  /** `redis://…` URL, or an existing client (the limiter then does not close it). */
  readonly redis: string | Redis;
  readonly keyPrefix?: string;
  readonly timeoutMs?: number;
  readonly leaseMs?: number;
  readonly concurrencyRetryMs?: number;
  readonly clock?: () => number;
}

interface Script {
  readonly lua: string;
  readonly sha: string;
}
const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') });
const RESERVE = script(RESERVE_LUA);
const SETTLE = script(SETTLE_LUA);

/** A client configured to fail fast (no offline queue, no retries, a per-command timeout). */
export function createFailFastClient(url: string, timeoutMs: number): Redis {
  return new (ioredis().Redis)(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(1000, timeoutMs * 4),
    // Reconnect forever, backing off to 1 s between attempts.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    // Nothing to say on connect: ioredis runs its handshake (RESP3 HELLO, CLIENT SETINFO) and its
    // INFO ready check under `commandTimeout`, and one that misses 50 ms on a busy event loop is
    // fatal to the fresh connection: it reconnects, and the requests meanwhile go to the failure
    // policy. RESP2 needs no HELLO; a Redis still loading its data answers LOADING, which the
    // failover treats as unreachable. (A password or a db index in the URL still adds AUTH / SELECT.)
    protocol: 2,
    disableClientInfo: true,
    enableReadyCheck: false,
    lazyConnect: false,
  });
}

export class RedisLimiter implements Limiter {
  readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly rules: CompiledRule[];
  private readonly prefix: string;
  private readonly leaseMs: number;
  private readonly concurrencyRetryMs: number;
  private readonly clock: () => number;

  constructor(options: RedisLimiterOptions) {
    const timeoutMs = options.timeoutMs ?? 50;
    this.ownsClient = typeof options.redis === 'string';
    this.client = typeof options.redis === 'string' ? createFailFastClient(options.redis, timeoutMs) : options.redis;
    // Connection errors are reported by the calls that fail; the client's own 'error' events
    // would otherwise be unhandled and crash the process.
    this.client.on('error', () => {});
    this.rules = compileRules(options);
    this.prefix = `${options.keyPrefix ?? 'llmgw:rl'}:`;
    this.leaseMs = options.leaseMs ?? 15 * 60_000;
    this.concurrencyRetryMs = options.concurrencyRetryMs ?? 1000;
    this.clock = options.clock ?? Date.now;
  }

  /** True when the connection is up (a call now will reach Redis). */
  get connected(): boolean {
    return this.client.status === 'ready';
  }

  /** Resolves once connected (startup), rejects after `timeoutMs`. */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.connected) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.client.off('ready', onReady);
        reject(new Error('redis not ready'));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.client.once('ready', onReady);
    });
  }

  async reserve(request: ReserveRequest): Promise<Decision> {
    const now = request.now ?? this.clock();
    const plan = planCounters(this.rules, request, request.estimate, now);
    const id = randomUUID();
    if (plan.length === 0) {
      // No limit applies to this request: nothing to check, no round trip.
      const reservation: Reservation = { id, backend: 'redis', keys: { caller: request.caller, model: request.model, route: request.route }, estimate: request.estimate, counters: [], createdAt: now, done: false };
      return { admitted: true, reservation, info: {} };
    }
    const keys = plan.map((c) => this.prefix + c.key);
    const args: (string | number)[] = [now, id, now + this.leaseMs, this.leaseMs * 2];
    for (const c of plan) args.push(c.kind, c.limit, c.amount, c.ttlMs);
    const reply = (await this.run(RESERVE, keys, args)) as number[];
    const used = reply.slice(1).map(Number);
    if (reply[0] !== 1) {
      const refused = refusalOf(plan, used, now, this.concurrencyRetryMs);
      // The script refuses exactly when a counter is broken at the values it returns.
      if (!refused) throw new Error('redis limiter: the script refused, yet no counter it returned is over its limit');
      return refused;
    }
    const reservation = newReservation(id, 'redis', request, plan, now);
    return { admitted: true, reservation, info: rateLimitInfo(plan, used, true, now) };
  }

  settle(reservation: Reservation, actual: LimitAmounts, now?: number): Promise<void> {
    return this.finish(reservation, actual, now ?? this.clock());
  }

  release(reservation: Reservation, now?: number): Promise<void> {
    return this.finish(reservation, undefined, now ?? this.clock());
  }

  async usage(keys: string | { caller: string; model?: string | undefined; route?: string | undefined }, now?: number): Promise<BudgetUsage> {
    const k = typeof keys === 'string' ? { caller: keys } : keys;
    const b = budgetCounters(this.rules, k, now ?? this.clock());
    if (b.length === 0) return { budgets: [], maxFraction: 0 };
    const values = await this.client.mget(...b.map((x) => this.prefix + x.key));
    const budgets = b.map((x, i) => {
      const usedMicros = Number(values[i] ?? 0);
      return { rule: x.rule, scope: x.scope, period: x.period, usedMicros, limitMicros: x.limit, fraction: x.limit === 0 ? Infinity : usedMicros / x.limit };
    });
    return { budgets, maxFraction: budgets.reduce((m, x) => Math.max(m, x.fraction), 0) };
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    this.client.disconnect();
  }

  private async finish(reservation: Reservation, actual: LimitAmounts | undefined, now: number): Promise<void> {
    if (reservation.done) return;
    reservation.done = true;
    const keys: string[] = [];
    const args: (string | number)[] = [reservation.id];
    for (const c of reservation.counters) {
      if (c.kind === 'c') {
        keys.push(this.prefix + c.key);
        args.push('c', 0, 0);
        continue;
      }
      const target = actual === undefined ? 0 : c.metric === 'requestsPerMinute' ? c.amount : amountFor(c.metric, actual);
      const t = settleTarget(c, target - c.amount, now);
      if (!t) continue;
      keys.push(this.prefix + t.key);
      args.push(c.kind, t.delta, t.ttlMs);
    }
    if (keys.length === 0) return;
    await this.run(SETTLE, keys, args);
  }

  private async run(s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return await this.client.eval(s.lua, keys.length, ...keys, ...args);
    }
  }
}
