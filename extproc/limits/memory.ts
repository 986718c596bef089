/**
 * @module limits/memory
 * The in-memory limiter: exact for one replica, and the local stand-in when Redis fails open.
 *
 * Counters live in a Map with an expiry per key (swept lazily on access and every 10,000
 * calls); concurrency slots are a map of reservation id → lease end. Everything a request does
 * happens in one synchronous step, so concurrent requests on the event loop are atomic with
 * respect to each other, the same guarantee the Redis Lua script gives across replicas.
 */
import { randomUUID } from 'node:crypto';
import { amountFor, budgetCounters, compileRules, newReservation, planCounters, rateLimitInfo, refusalOf, settleTarget } from './plan.js';
import type { CompiledRule } from './plan.js';
import type { RateLimitOptions } from './options.js';
import type { BudgetUsage, Decision, LimitAmounts, LimitKeys, Limiter, Reservation, ReserveRequest } from './types.js';

export interface MemoryLimiterOptions {
  readonly limits: RateLimitOptions['limits'];
  readonly concurrencyRetryMs?: number;
  /** Lease of a concurrency slot (a reservation never settled frees it after this). */
  readonly leaseMs?: number;
  /** Clock for calls that pass no `now` (tests inject one). */
  readonly clock?: () => number;
}

interface Cell {
  value: number;
  expiresAt: number;
}

export class MemoryLimiter implements Limiter {
  private readonly rules: CompiledRule[];
  private readonly cells = new Map<string, Cell>();
  private readonly slots = new Map<string, Map<string, number>>();
  private readonly clock: () => number;
  private readonly concurrencyRetryMs: number;
  private readonly leaseMs: number;
  private calls = 0;

  constructor(options: MemoryLimiterOptions) {
    this.rules = compileRules(options);
    this.clock = options.clock ?? Date.now;
    this.concurrencyRetryMs = options.concurrencyRetryMs ?? 1000;
    this.leaseMs = options.leaseMs ?? 15 * 60_000;
  }

  reserve(request: ReserveRequest): Promise<Decision> {
    return Promise.resolve(this.reserveSync(request));
  }

  /** `reserve` without the promise (the memory backend never waits). */
  reserveSync(request: ReserveRequest, backend: 'memory' = 'memory'): Decision {
    const now = request.now ?? this.clock();
    if (++this.calls % 10_000 === 0) this.sweep(now);
    const plan = planCounters(this.rules, request, request.estimate, now);
    const used = new Array<number>(plan.length);
    for (let i = 0; i < plan.length; i++) {
      const c = plan[i]!;
      used[i] = c.kind === 'c' ? this.liveSlots(c.key, now) : this.get(c.key, now);
    }
    const refused = refusalOf(plan, used, now, this.concurrencyRetryMs);
    if (refused) return refused;
    const id = randomUUID();
    for (const c of plan) {
      if (c.kind === 'c') {
        let m = this.slots.get(c.key);
        if (!m) this.slots.set(c.key, (m = new Map()));
        m.set(id, now + this.leaseMs);
      } else {
        this.add(c.key, c.amount, c.ttlMs, now);
      }
    }
    const reservation = newReservation(id, backend, request, plan, now);
    return { admitted: true, reservation, info: rateLimitInfo(plan, used, true, now) };
  }

  settle(reservation: Reservation, actual: LimitAmounts, now?: number): Promise<void> {
    this.settleSync(reservation, actual, now ?? this.clock());
    return Promise.resolve();
  }

  release(reservation: Reservation, now?: number): Promise<void> {
    this.settleSync(reservation, undefined, now ?? this.clock());
    return Promise.resolve();
  }

  /** Settles (with `actual`) or releases (without) synchronously. */
  settleSync(reservation: Reservation, actual: LimitAmounts | undefined, now: number): void {
    if (reservation.done) return;
    reservation.done = true;
    for (const c of reservation.counters) {
      if (c.kind === 'c') {
        this.slots.get(c.key)?.delete(reservation.id);
        continue;
      }
      // Released: the request never happened (its request count is refunded too).
      const target = actual === undefined ? 0 : c.metric === 'requestsPerMinute' ? c.amount : amountFor(c.metric, actual);
      const t = settleTarget(c, target - c.amount, now);
      if (t) this.add(t.key, t.delta, t.ttlMs, now);
    }
  }

  usage(keys: string | { caller: string; model?: string | undefined; route?: string | undefined }, now?: number): Promise<BudgetUsage> {
    const k = typeof keys === 'string' ? { caller: keys } : keys;
    const t = now ?? this.clock();
    const budgets = budgetCounters(this.rules, k, t).map((b) => {
      const usedMicros = this.get(b.key, t);
      return { rule: b.rule, scope: b.scope, period: b.period, usedMicros, limitMicros: b.limit, fraction: b.limit === 0 ? Infinity : usedMicros / b.limit };
    });
    return Promise.resolve({ budgets, maxFraction: budgets.reduce((m, b) => Math.max(m, b.fraction), 0) });
  }

  close(): Promise<void> {
    this.cells.clear();
    this.slots.clear();
    return Promise.resolve();
  }

  private get(key: string, now: number): number {
    const cell = this.cells.get(key);
    if (!cell) return 0;
    if (cell.expiresAt <= now) {
      this.cells.delete(key);
      return 0;
    }
    return cell.value;
  }

  private add(key: string, delta: number, ttlMs: number, now: number): void {
    const cell = this.cells.get(key);
    if (!cell || cell.expiresAt <= now) {
      this.cells.set(key, { value: Math.max(0, delta), expiresAt: now + ttlMs });
      return;
    }
    cell.value = Math.max(0, cell.value + delta);
  }

  private liveSlots(key: string, now: number): number {
    const m = this.slots.get(key);
    if (!m) return 0;
    for (const [id, until] of m) if (until <= now) m.delete(id);
    return m.size;
  }

  private sweep(now: number): void {
    for (const [k, c] of this.cells) if (c.expiresAt <= now) this.cells.delete(k);
    for (const [k, m] of this.slots) {
      for (const [id, until] of m) if (until <= now) m.delete(id);
      if (m.size === 0) this.slots.delete(k);
    }
  }
}

/** Keys of a request as the limiter sees them (helper for callers building a ReserveRequest). */
export function limitKeys(caller: string, model: string, route?: string): LimitKeys {
  return route === undefined ? { caller, model } : { caller, model, route };
}
