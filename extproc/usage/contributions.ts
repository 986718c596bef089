/**
 * @module usage/contributions
 * The parts of a request's usage record that other stages know, as exchange slots. Each stage
 * sets its slot (routing its decision, PII its entity counts, the cache its status, limits their
 * decision); none writes the record itself. The `usage` stage reads them all optionally in its
 * `finish` hook, so a pipeline without PII or cache still gets a record with those parts empty.
 *
 * A stage that writes one of these declares it in its factory's `writes` (one writer per slot).
 * Values must be free of prompt text, PII and credentials: they end up in logs, the ledger and
 * metric labels.
 */
import { slot } from '../pipeline/exchange.js';

/** What routing decided (routing stage, request phases). */
export interface RouteContribution {
  /** Route name (config `routes[].name`). */
  readonly route: string;
  /** Catalog model of the chain's first step (what the gateway meant to serve). */
  readonly model: string;
  /** Provider of the first step. */
  readonly provider?: string;
  /** The whole chain, first step first (catalog model names), for the fallback path. */
  readonly chain?: readonly string[];
}

/** PII entities found in the request, by entity type (`EMAIL`, `PHONE`…) → count. Never the values. */
export type PiiContribution = Readonly<Record<string, number>>;

/** The semantic cache's verdict for the request. */
export interface CacheContribution {
  /** `hit`: answered from the cache (no provider tokens); `miss`: looked up, not found; `bypass`: not looked up. */
  readonly status: 'hit' | 'miss' | 'bypass';
  /** Cost the hit saved, when the cache knows it (the original answer's cost). */
  readonly savedMicros?: number;
  /** Usage of the cached answer, priced at the served model's rates when `savedMicros` is absent. */
  readonly savedUsage?: { readonly inputTokens: number; readonly outputTokens: number };
  /** Model whose answer was served from the cache. */
  readonly model?: string;
}

/** The rate-limit / budget decision. */
export interface RateLimitContribution {
  /** `allow`ed, `reject`ed (429 to the client), or `skip`ped (limits failed open). */
  readonly decision: 'allow' | 'reject' | 'skip';
  /** Which limit decided a rejection (`requests`, `tokens`, `budget`…). */
  readonly limit?: string;
}

/** The attempt that served, when a stage knows it on this replica (else read from `ai_gateway` metadata). */
export interface AttemptContribution {
  readonly servedModel?: string;
  readonly provider?: string;
  /** Upstream tries, the serving one included. */
  readonly attempts?: number;
  /** Catalog models tried in order, the serving one last. */
  readonly path?: readonly string[];
}

export const routeContribution = slot<RouteContribution>('usage.route');
export const piiContribution = slot<PiiContribution>('usage.pii');
export const cacheContribution = slot<CacheContribution>('usage.cache');
export const rateLimitContribution = slot<RateLimitContribution>('usage.rateLimit');
export const attemptContribution = slot<AttemptContribution>('usage.attempt');

/**
 * `ai_gateway` dynamic metadata keys the attempt stage sets on its response phases (Envoy
 * forwards them to the router and observability streams), read when no slot says otherwise.
 */
export const ATTEMPT_METADATA = {
  servedModel: 'served_model',
  provider: 'provider',
  attempts: 'attempts',
  route: 'route',
} as const;
