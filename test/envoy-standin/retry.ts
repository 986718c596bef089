/**
 * Router retry state and host selection, after source/common/router/retry_state_impl.cc,
 * source/common/common/backoff_strategy.cc, the previous_priorities retry priority and the
 * previous_hosts retry host predicate (facts §3.1–§3.3).
 */
import type { ClusterConfig, EndpointConfig, RetryPolicyConfig } from './config/index.js';
import type { HeaderMap } from './headers.js';
import type { Prng } from './chunker.js';
import type { StandinStats } from './stats.js';

export const RETRY_ON = {
  '5xx': 1 << 0,
  'gateway-error': 1 << 1,
  'connect-failure': 1 << 2,
  'retriable-4xx': 1 << 3,
  'refused-stream': 1 << 4,
  'retriable-status-codes': 1 << 5,
  'retriable-headers': 1 << 6,
  reset: 1 << 7,
  'reset-before-request': 1 << 8,
  'envoy-ratelimited': 1 << 9,
  'http3-post-connect-failure': 1 << 10,
  // gRPC conditions (parseRetryGrpcOn) only look at grpc-status, which plain HTTP responses lack.
  cancelled: 1 << 16,
  'deadline-exceeded': 1 << 17,
  internal: 1 << 18,
  'resource-exhausted': 1 << 19,
  unavailable: 1 << 20,
} as const;

/**
 * RetryStateImpl::parseRetryOn/parseRetryGrpcOn: comma-separated tokens; unknown tokens are
 * ignored (the config still loads — ai-gateway's CI config has a typo'd token, facts §3.1).
 */
export function parseRetryOn(s: string): { bits: number; unknown: string[] } {
  let bits = 0;
  const unknown: string[] = [];
  for (const raw of s.split(',')) {
    const t = raw.trim();
    if (!t) continue;
    const b = (RETRY_ON as Record<string, number>)[t];
    if (b === undefined) unknown.push(t);
    else bits |= b;
  }
  return { bits, unknown };
}

/** Why an upstream attempt ended without (usable) response headers. */
export type ResetReason =
  | 'connection_failure'
  | 'connection_termination'
  | 'remote_reset'
  | 'local_reset'
  | 'overflow'
  | 'per_try_timeout'
  | 'per_try_idle_timeout';

/** Cluster-wide counters shared by all requests (circuit breaker max_retries). */
export class ClusterResources {
  activeRequests = 0;
  activeRetries = 0;
  rrIndex: number[] = [];
}

/** JitteredExponentialBackOffStrategy::nextBackOffMs. */
class JitteredBackOff {
  private currentRetry = 1;
  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly rng: Prng,
  ) {}
  next(): number {
    const multiplier = 2 ** this.currentRetry - 1;
    const base = multiplier * this.baseMs;
    if (base <= this.maxMs) this.currentRetry++;
    return Math.min(base > 0 ? this.rng.nextU32() % base : 0, this.maxMs);
  }
}

export interface Host {
  endpoint: EndpointConfig;
  priority: number;
  address: string;
}

/**
 * Picks the priority and host of each attempt. Every host counts as healthy (no health checks or
 * outlier detection are modelled), so with the default overprovisioning factor (1.4) priority 0
 * takes all the load until previous_priorities excludes it.
 */
export class HostSelector {
  private readonly attempted: Host[] = [];
  private excluded: boolean[];

  constructor(
    private readonly cluster: ClusterConfig,
    private readonly resources: ClusterResources,
    private readonly rng: Prng,
    private readonly previousPrioritiesUpdateFrequency: number | undefined,
    private readonly previousHosts: boolean,
    private readonly hostSelectionRetryMaxAttempts: number,
  ) {
    this.excluded = cluster.priorities.map(() => false);
  }

  /** load_balancer_impl.cc: per-priority load from health with overprovisioning 1.4, capped at 100. */
  private loadFor(excluded: boolean[]): number[] {
    const health = this.cluster.priorities.map((p, i) => (excluded[i] || p.length === 0 ? 0 : Math.min(100, 140)));
    const total = Math.min(100, health.reduce((a, b) => a + b, 0));
    if (total === 0) return health.map(() => 0);
    let remaining = 100;
    return health.map((h) => {
      const l = Math.min(remaining, Math.round((h * 100) / total));
      remaining -= l;
      return l;
    });
  }

  /** PreviousPrioritiesRetryPriority::determinePriorityLoad (+ adjustForAttemptedPriorities). */
  private priorityLoad(): number[] {
    const original = this.loadFor(this.cluster.priorities.map(() => false));
    const f = this.previousPrioritiesUpdateFrequency;
    if (!f) return original;
    if (this.attempted.length < f) return original;
    if (this.attempted.length % f === 0) {
      for (const h of this.attempted) this.excluded[h.priority] = true;
      const adjusted = this.loadFor(this.excluded);
      if (adjusted.every((l) => l === 0)) {
        // "If there are no available priorities left, we reset the attempted priorities".
        this.excluded = this.excluded.map(() => false);
        this.attempted.length = 0;
        return original;
      }
      return adjusted;
    }
    return this.loadFor(this.excluded);
  }

  /** Round robin within the chosen priority; previous_hosts re-selects up to N times. */
  choose(): Host {
    const load = this.priorityLoad();
    const hash = this.rng.nextU32() % 100;
    let prio = 0;
    for (let acc = 0, i = 0; i < load.length; i++) {
      acc += load[i]!;
      if (hash < acc) {
        prio = i;
        break;
      }
    }
    const eps = this.cluster.priorities[prio]!;
    let host: Host | undefined;
    for (let attempt = 0; attempt <= this.hostSelectionRetryMaxAttempts; attempt++) {
      const idx = (this.resources.rrIndex[prio] = ((this.resources.rrIndex[prio] ?? -1) + 1) % eps.length);
      const ep = eps[idx]!;
      host = { endpoint: ep, priority: prio, address: `${ep.host}:${ep.port}` };
      const seen = this.attempted.some((a) => a.endpoint === ep);
      if (!this.previousHosts || !seen) break;
    }
    return host!;
  }

  /** RetryStateImpl::onHostAttempted → retry priority and host predicates. */
  onHostAttempted(h: Host): void {
    this.attempted.push(h);
  }
}

export type RetryDecision = 'retry' | 'no_retry' | 'limit_exceeded' | 'overflow';

/** RetryStateImpl. */
export class RetryState {
  private retryOn: number;
  private retriesRemaining: number;
  private readonly retriableStatusCodes: number[];
  private readonly backOff: JitteredBackOff;
  private holdsRetryResource = false;

  private constructor(
    policy: RetryPolicyConfig,
    retryOn: number,
    headers: HeaderMap,
    private readonly cluster: ClusterConfig,
    private readonly resources: ClusterResources,
    private readonly stats: StandinStats,
    rng: Prng,
  ) {
    this.retryOn = retryOn;
    this.retriesRemaining = policy.numRetries;
    this.retriableStatusCodes = [...policy.retriableStatusCodes];
    // x-envoy-max-retries takes precedence over num_retries.
    const mr = headers.get('x-envoy-max-retries');
    if (mr !== undefined && /^\d+$/.test(mr.trim())) this.retriesRemaining = Number(mr.trim());
    // x-envoy-retriable-status-codes are appended to the route's list.
    for (const c of (headers.get('x-envoy-retriable-status-codes') ?? '').split(',')) {
      if (/^\d+$/.test(c.trim())) this.retriableStatusCodes.push(Number(c.trim()));
    }
    this.backOff = new JitteredBackOff(policy.backOffBaseMs, policy.backOffMaxMs, rng);
  }

  /**
   * RetryStateImpl::create: route policy OR'ed with x-envoy-retry-on / x-envoy-retry-grpc-on; no
   * state when no condition is set. The steering headers are consumed (removed) either way.
   */
  static create(
    policy: RetryPolicyConfig | undefined,
    headers: HeaderMap,
    cluster: ClusterConfig,
    resources: ClusterResources,
    stats: StandinStats,
    rng: Prng,
  ): RetryState | null {
    let bits = policy ? parseRetryOn(policy.retryOn).bits : 0;
    for (const h of ['x-envoy-retry-on', 'x-envoy-retry-grpc-on']) {
      const v = headers.get(h);
      if (v !== undefined) bits |= parseRetryOn(v).bits;
    }
    const state =
      bits !== 0
        ? new RetryState(
            policy ?? {
              retryOn: '',
              numRetries: 1,
              perTryTimeoutMs: 0,
              perTryIdleTimeoutMs: 0,
              retriableStatusCodes: [],
              backOffBaseMs: 25,
              backOffMaxMs: 250,
              previousHostsPredicate: false,
              hostSelectionRetryMaxAttempts: 1,
            },
            bits,
            headers,
            cluster,
            resources,
            stats,
            rng,
          )
        : null;
    for (const h of [
      'x-envoy-retry-on',
      'x-envoy-retry-grpc-on',
      'x-envoy-max-retries',
      'x-envoy-retriable-status-codes',
      'x-envoy-retriable-header-names',
      'x-envoy-hedge-on-per-try-timeout',
    ]) {
      headers.remove(h);
    }
    return state;
  }

  /** RetryStateImpl::wouldRetryFromHeaders. */
  wouldRetryFromHeaders(status: number, headers: HeaderMap): boolean {
    if (headers.has('x-envoy-overloaded')) return false;
    if (headers.has('x-envoy-ratelimited')) return (this.retryOn & RETRY_ON['envoy-ratelimited']) !== 0;
    if (this.retryOn & RETRY_ON['5xx'] && status >= 500 && status < 600) return true;
    if (this.retryOn & RETRY_ON['gateway-error'] && (status === 502 || status === 503 || status === 504)) return true;
    if (this.retryOn & RETRY_ON['retriable-4xx'] && status === 409) return true;
    if (this.retryOn & RETRY_ON['retriable-status-codes'] && this.retriableStatusCodes.includes(status)) return true;
    return false;
  }

  /** RetryStateImpl::wouldRetryFromReset (a per-try timeout is a local reset, TimeoutRetry::Yes). */
  wouldRetryFromReset(reason: ResetReason, requestStarted: boolean): boolean {
    if (reason === 'overflow') return false;
    if (this.retryOn & (RETRY_ON['5xx'] | RETRY_ON['gateway-error'] | RETRY_ON.reset)) return true;
    if (reason === 'connection_failure' && this.retryOn & RETRY_ON['connect-failure']) return true;
    // RETRY_ON_RESET_BEFORE_REQUEST: any reset before the request headers reached the upstream
    // ("only return a positive retry decision if we haven't sent any bytes upstream"), whatever
    // its reason — a per-try timeout while an upstream filter holds the headers included.
    if (this.retryOn & RETRY_ON['reset-before-request'] && !requestStarted) return true;
    return false;
  }

  /**
   * RetryStateImpl::shouldRetry: counts the retry against num_retries and the cluster's
   * max_retries circuit breaker (held until the retried attempt's outcome is known).
   */
  shouldRetry(would: boolean): RetryDecision {
    this.releaseRetryResource();
    if (!would) return 'no_retry';
    if (this.retriesRemaining === 0) {
      this.stats.inc(`cluster.${this.cluster.name}.upstream_rq_retry_limit_exceeded`);
      return 'limit_exceeded';
    }
    this.retriesRemaining--;
    if (this.resources.activeRetries >= this.cluster.maxRetries) {
      this.stats.inc(`cluster.${this.cluster.name}.upstream_rq_retry_overflow`);
      return 'overflow';
    }
    this.resources.activeRetries++;
    this.holdsRetryResource = true;
    this.stats.inc(`cluster.${this.cluster.name}.upstream_rq_retry`);
    return 'retry';
  }

  nextBackOffMs(): number {
    return this.backOff.next();
  }

  /** resetRetry / destructor. */
  releaseRetryResource(): void {
    if (this.holdsRetryResource) {
      this.holdsRetryResource = false;
      this.resources.activeRetries--;
    }
  }
}
