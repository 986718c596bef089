/**
 * @module limits/types
 * The limiter contract shared by the in-memory and Redis backends.
 *
 * A request reserves its estimate at once (`reserve`), then settles to what it really used
 * when it ends (`settle`: the difference is refunded or charged, the concurrency slot freed) or
 * is cancelled before anything was served (`release`: everything refunded, the request too).
 */
import type { LimitMetric, LimitScope } from './options.js';

/** Who and what a request is, for choosing counters. */
export interface LimitKeys {
  /** Caller identity (from the `identity` stage). */
  readonly caller: string;
  /** Catalog name of the model that will serve it. */
  readonly model: string;
  /** Route name, when the request matched a named route. */
  readonly route?: string | undefined;
}

/** What a request is expected to use (reserve) or used (settle). */
export interface LimitAmounts {
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Cost in integer micro-dollars (pricing/cost). */
  readonly costMicros: number;
}

export interface ReserveRequest extends LimitKeys {
  readonly estimate: LimitAmounts;
  /** Current time in ms since the epoch (defaults to the limiter's clock). */
  readonly now?: number;
}

/** Header figures for one kind (OpenAI's `x-ratelimit-*-requests` / `-tokens`). */
export interface RateLimitFigure {
  readonly limit: number;
  readonly remaining: number;
  /** Milliseconds until the window that binds resets. */
  readonly resetMs: number;
}

/** The tightest request and token windows that applied (absent when no such limit is configured). */
export interface RateLimitInfo {
  readonly requests?: RateLimitFigure;
  readonly tokens?: RateLimitFigure;
}

/** One counter a reservation touched (kept so settle/release touch the same ones). */
export interface ReservedCounter {
  /** Key without the backend prefix. */
  readonly key: string;
  readonly kind: CounterKind;
  readonly metric: LimitMetric;
  readonly amount: number;
  /** Window index (windowed counters): settle compares it with the current one. */
  readonly window: number;
  /** Key of the counter family without the window suffix (to address the current window). */
  readonly base: string;
}

/** `w`: a fixed-window sum checked as `used + amount ≤ limit`; `b`: a budget, denied once `used ≥ limit`; `c`: concurrency slots. */
export type CounterKind = 'w' | 'b' | 'c';

export interface Reservation {
  readonly id: string;
  /** Which store holds it (`redis` or `memory`, also `memory` when Redis failed open). */
  readonly backend: 'redis' | 'memory';
  readonly keys: LimitKeys;
  readonly estimate: LimitAmounts;
  readonly counters: readonly ReservedCounter[];
  readonly createdAt: number;
  /** Set once settled or released: a second call does nothing. */
  done: boolean;
}

/** The limit that refused a request. */
export interface LimitHit {
  /** Index in the stage's `limits` (-1 when the limiter itself is unavailable and fails closed). */
  readonly rule: number;
  readonly scope: LimitScope | 'limiter';
  readonly metric: LimitMetric | 'unavailable';
  readonly limit: number;
  readonly used: number;
}

export type Decision =
  | { readonly admitted: true; readonly reservation: Reservation; readonly info: RateLimitInfo }
  | { readonly admitted: false; readonly retryAfterMs: number; readonly limit: LimitHit; readonly hits: readonly LimitHit[]; readonly info: RateLimitInfo };

/** Budget use of one budget limit. */
export interface BudgetUse {
  readonly rule: number;
  readonly scope: LimitScope;
  readonly period: 'day' | 'month';
  readonly usedMicros: number;
  readonly limitMicros: number;
  /** used ÷ limit (1 or more: spent; Infinity for a zero budget). */
  readonly fraction: number;
}

export interface BudgetUsage {
  readonly budgets: readonly BudgetUse[];
  /** The largest fraction (0 when no budget applies): what routing conditions read. */
  readonly maxFraction: number;
}

/** A rate limiter (in memory or on Redis). */
export interface Limiter {
  /** Checks every limit of the request and reserves its estimate against all of them, atomically. */
  reserve(request: ReserveRequest): Promise<Decision>;
  /** Replaces the estimate with what was used: the difference is refunded or charged; the slot is freed. */
  settle(reservation: Reservation, actual: LimitAmounts, now?: number): Promise<void>;
  /** Cancels a reservation that served nothing: everything refunded (the request count too). */
  release(reservation: Reservation, now?: number): Promise<void>;
  /** Budget use for a caller (optionally for one model: caller-model budgets count too). */
  usage(keys: string | Omit<LimitKeys, 'model'> & { readonly model?: string | undefined }, now?: number): Promise<BudgetUsage>;
  close(): Promise<void>;
}
