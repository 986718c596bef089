/**
 * Route matching (the HCM's route table) and the router filter (source/common/router/router.cc):
 * cluster selection (`cluster` / `cluster_header`), timeouts, retries with per-attempt upstream
 * filter chains, and the response hand-off to the encoder filters.
 */
import type { Prng } from './chunker.js';
import type { EnvoyVersion } from './version.js';
import type { ClusterConfig, RetryPolicyConfig, RouteConfig, VirtualHostConfig } from './config/index.js';
import type { ExtProcClients } from './extProcClient.js';
import type { FilterCallbacks, StreamFilter } from './filterManager.js';
import type { HeaderMap } from './headers.js';
import { ClusterResources, HostSelector, RetryState, type ResetReason } from './retry.js';
import type { StandinStats } from './stats.js';
import { UpstreamRequest, type UpstreamEvents } from './upstream.js';

export interface ResolvedRoute {
  name: string;
  vhost: VirtualHostConfig;
  route: RouteConfig;
  /** For cluster_header routes, the header's value when the route was resolved. */
  clusterName?: string;
}

/** Virtual host by :authority (exact, then *suffix, then prefix*, then *), then the first matching route. */
export class RouteTable {
  constructor(private readonly vhosts: VirtualHostConfig[]) {}

  private vhostFor(authority: string): VirtualHostConfig | undefined {
    const host = authority.toLowerCase();
    const byKind = (pred: (d: string) => boolean) => this.vhosts.find((v) => v.domains.some((d) => pred(d.toLowerCase())));
    return (
      byKind((d) => d === host) ??
      byKind((d) => d.length > 1 && d.startsWith('*') && host.endsWith(d.slice(1))) ??
      byKind((d) => d.length > 1 && d.endsWith('*') && host.startsWith(d.slice(0, -1))) ??
      byKind((d) => d === '*')
    );
  }

  match(headers: HeaderMap): ResolvedRoute | null {
    const vh = this.vhostFor(headers.get(':authority') ?? '');
    if (!vh) return null;
    const path = headers.get(':path') ?? '/';
    for (const r of vh.routes) {
      if (r.prefix !== undefined && !path.startsWith(r.prefix)) continue;
      // `path`: exact match once the query string is removed.
      if (r.path !== undefined && path.split('?')[0] !== r.path) continue;
      const headersOk = r.headers.every((m) => {
        const v = headers.getAll(m.name);
        if (m.present !== undefined) return m.present === v.length > 0;
        const joined = v.join(',');
        if (v.length === 0) return false;
        if (m.exact !== undefined) return joined === m.exact;
        return m.prefix !== undefined && joined.startsWith(m.prefix);
      });
      if (!headersOk) continue;
      // RouteEntryImplBase::clusterEntry: cluster_header is read when the route is resolved
      // ("only the first value is used").
      const clusterName = r.clusterHeader !== undefined ? headers.get(r.clusterHeader) : r.cluster;
      return { name: r.name, vhost: vh, route: r, clusterName };
    }
    return null;
  }
}

export interface RouterContext {
  clusters: Map<string, ClusterConfig>;
  resources: Map<string, ClusterResources>;
  clients: ExtProcClients;
  stats: StandinStats;
  rng: Prng;
  /** Multiplier for retry back-off sleeps (tests shorten them; order is unchanged). */
  backOffScale: number;
  envoyVersion: EnvoyVersion;
}

/** streamResetReasonToResponseFlag (router.cc) and the timeout flags. */
const RESET_FLAG: Record<ResetReason, string> = {
  connection_failure: 'UF',
  connection_termination: 'UC',
  remote_reset: 'UR',
  local_reset: 'LR',
  overflow: 'UO',
  per_try_timeout: 'UT',
  per_try_idle_timeout: 'UT',
};

const RESET_TEXT: Record<ResetReason, string> = {
  connection_failure: 'connection failure',
  connection_termination: 'connection termination',
  remote_reset: 'remote reset',
  local_reset: 'local reset',
  overflow: 'overflow',
  per_try_timeout: 'per try timeout',
  per_try_idle_timeout: 'per try idle timeout',
};

export class RouterFilter implements StreamFilter, UpstreamEvents {
  private headers?: HeaderMap;
  private route?: ResolvedRoute;
  private cluster?: ClusterConfig;
  private resources?: ClusterResources;
  private retryState: RetryState | null = null;
  private hostSelector?: HostSelector;
  private globalTimeoutMs = 0;
  private perTryTimeoutMs = 0;
  private perTryIdleTimeoutMs = 0;
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private downstreamEnd = false;
  private attempt?: UpstreamRequest;
  private attemptStart = 0;
  private attemptCount = 0;
  private downstreamResponseStarted = false;
  private globalTimer?: NodeJS.Timeout;
  private perTryTimer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private finished = false;

  constructor(
    private readonly cb: FilterCallbacks,
    private readonly ctx: RouterContext,
    private readonly suppressEnvoyHeaders: boolean,
  ) {}

  private clusterStat(name: string): void {
    this.ctx.stats.inc(`cluster.${this.cluster!.name}.${name}`);
  }

  /** Router::Filter::decodeHeaders. */
  decodeHeaders(h: HeaderMap, eos: boolean): void {
    this.headers = h;
    const route = this.cb.route();
    if (!route) {
      this.ctx.stats.inc('no_route');
      this.cb.streamInfo.setResponseFlag('NR');
      this.cb.sendLocalReply(404, '', undefined, 'route_not_found');
      return;
    }
    this.route = route;
    const cluster = route.clusterName !== undefined ? this.ctx.clusters.get(route.clusterName) : undefined;
    if (!cluster) {
      // sendLocalReply(route_entry_->clusterNotFoundResponseCode(), ...) — default 503 (facts §2.7).
      this.ctx.stats.inc('no_cluster');
      this.cb.streamInfo.setResponseFlag('NC');
      this.cb.sendLocalReply(route.route.clusterNotFoundCode, '', undefined, 'cluster_not_found');
      return;
    }
    this.cluster = cluster;
    this.cb.streamInfo.upstreamCluster = cluster.name;
    let res = this.ctx.resources.get(cluster.name);
    if (!res) this.ctx.resources.set(cluster.name, (res = new ClusterResources()));
    this.resources = res;

    // Route-level retry policy wins over the virtual host's; no merging (facts §3.2).
    const policy: RetryPolicyConfig | undefined = route.route.retryPolicy ?? route.vhost.retryPolicy;
    // FilterUtility::finalTimeout: the x-envoy-upstream-rq-* headers override and are consumed.
    this.globalTimeoutMs = route.route.timeoutMs;
    this.perTryTimeoutMs = policy?.perTryTimeoutMs ?? 0;
    this.perTryIdleTimeoutMs = policy?.perTryIdleTimeoutMs ?? 0;
    const gt = h.get('x-envoy-upstream-rq-timeout-ms');
    if (gt !== undefined) {
      if (/^\d+$/.test(gt)) this.globalTimeoutMs = Number(gt);
      h.remove('x-envoy-upstream-rq-timeout-ms');
    }
    const pt = h.get('x-envoy-upstream-rq-per-try-timeout-ms');
    if (pt !== undefined) {
      if (/^\d+$/.test(pt)) this.perTryTimeoutMs = Number(pt);
      h.remove('x-envoy-upstream-rq-per-try-timeout-ms');
    }
    // "See if there is a per try/retry timeout. If it's >= global we just ignore it."
    if (this.perTryTimeoutMs >= this.globalTimeoutMs && this.globalTimeoutMs !== 0) this.perTryTimeoutMs = 0;
    const expected = this.perTryTimeoutMs || this.globalTimeoutMs;
    if (!this.suppressEnvoyHeaders && expected > 0) h.set('x-envoy-expected-rq-timeout-ms', String(expected));

    // RetryStateImpl reads (and the router removes) x-envoy-retry-on, x-envoy-max-retries, ...
    this.retryState = RetryState.create(policy, h, cluster, res, this.ctx.stats, this.ctx.rng.fork(1));
    this.hostSelector = new HostSelector(
      cluster,
      res,
      this.ctx.rng.fork(2),
      policy?.previousPrioritiesUpdateFrequency,
      policy?.previousHostsPredicate ?? false,
      policy?.hostSelectionRetryMaxAttempts ?? 1,
    );
    // finalizeRequestHeaders: request_headers_to_remove.
    for (const k of route.route.requestHeadersToRemove) h.remove(k);

    this.downstreamEnd = eos;
    this.startAttempt();
    if (eos) this.onRequestComplete();
  }

  /** Router::Filter::decodeData: forwarded to the current attempt and kept for retries. */
  decodeData(d: Buffer, eos: boolean): void {
    if (this.finished || !this.cluster) return;
    if (this.retryState) {
      if (this.bodyBytes + d.length > this.cb.bufferLimit) {
        // The body no longer fits the retry buffer: retries are abandoned (retry_or_shadow_abandoned).
        this.ctx.stats.inc('retry_or_shadow_abandoned');
        this.retryState.releaseRetryResource();
        this.retryState = null;
        this.body = [];
      } else {
        this.body.push(Buffer.from(d));
        this.bodyBytes += d.length;
      }
    }
    if (eos) this.downstreamEnd = true;
    this.attempt?.sendData(d, eos);
    if (eos) this.onRequestComplete();
  }

  /** The route timeout runs from the end of the downstream request (route_components.proto). */
  private onRequestComplete(): void {
    if (this.finished) return;
    if (this.globalTimeoutMs > 0 && !this.globalTimer) {
      this.globalTimer = setTimeout(() => this.onGlobalTimeout(), this.globalTimeoutMs);
    }
    this.startAttemptTimers();
  }

  /**
   * per_try_timeout and per_try_idle_timeout start once the whole request reached the router (and a
   * connection was obtained, which is immediate here). per_try_timeout stops when the response
   * starts downstream; the idle timer keeps running while the response streams (route_components.proto).
   */
  private startAttemptTimers(): void {
    if (!this.attempt || !this.downstreamEnd) return;
    if (this.perTryTimeoutMs > 0 && !this.perTryTimer && !this.downstreamResponseStarted) {
      this.perTryTimer = setTimeout(() => this.onAttemptTimeout('per_try_timeout'), this.perTryTimeoutMs);
    }
    this.resetIdleTimer();
  }

  private resetIdleTimer(): void {
    if (this.perTryIdleTimeoutMs <= 0 || !this.attempt || !this.downstreamEnd) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onAttemptTimeout('per_try_idle_timeout'), this.perTryIdleTimeoutMs);
  }

  private clearAttemptTimers(): void {
    clearTimeout(this.perTryTimer);
    clearTimeout(this.idleTimer);
    this.perTryTimer = undefined;
    this.idleTimer = undefined;
  }

  private startAttempt(): void {
    if (this.finished) return;
    const cluster = this.cluster!;
    const res = this.resources!;
    if (res.activeRequests >= cluster.maxRequests) {
      // Circuit breaker overflow → onPoolFailure(Overflow): 503 with x-envoy-overloaded, no retry.
      this.clusterStat('upstream_rq_pending_overflow');
      this.cb.streamInfo.setResponseFlag('UO');
      this.cb.sendLocalReply(
        503,
        'upstream connect error or disconnect/reset before headers. reset reason: overflow',
        (h) => {
          if (!this.suppressEnvoyHeaders) h.set('x-envoy-overloaded', 'true');
        },
        'upstream_reset_before_response_started{overflow}',
      );
      return;
    }
    this.attemptCount++;
    const si = this.cb.streamInfo;
    si.attemptCount = this.attemptCount;
    const host = this.hostSelector!.choose();
    this.hostSelector!.onHostAttempted(host);
    si.upstreamHost = host.address;
    si.upstreamHostsAttempted.push(host.address);
    const h = this.headers!;
    // VirtualHost.include_request_attempt_count: set on the (shared) header map per attempt.
    if (this.route!.vhost.includeRequestAttemptCount) h.set('x-envoy-attempt-count', String(this.attemptCount));
    res.activeRequests++;
    this.clusterStat('upstream_rq_total');
    const a = new UpstreamRequest(
      cluster,
      host,
      this.ctx.rng.fork(100 + this.attemptCount),
      {
        stats: this.ctx.stats,
        clients: this.ctx.clients,
        streamInfo: si,
        routes: { route: () => this.cb.route(), clearRouteCache: () => this.cb.clearRouteCache() },
        rng: this.ctx.rng,
        envoyVersion: this.ctx.envoyVersion,
      },
      this,
      this.route!.route.autoHostRewrite,
    );
    this.attempt = a;
    this.attemptStart = Date.now();
    // The request body buffered so far is replayed to every attempt.
    const body = Buffer.concat(this.body);
    a.start(h, this.downstreamEnd && body.length === 0);
    if (this.attempt === a && body.length > 0) a.sendData(body, this.downstreamEnd);
    if (this.attempt === a) this.startAttemptTimers();
  }

  private releaseAttempt(a: UpstreamRequest): void {
    if (this.attempt !== a) return;
    this.attempt = undefined;
    this.resources!.activeRequests--;
    this.clearAttemptTimers();
  }

  private scheduleRetry(): void {
    const ms = this.retryState!.nextBackOffMs() * this.ctx.backOffScale;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.startAttempt();
    }, ms);
  }

  // ---- upstream events ---------------------------------------------------------------------------

  /** Router::Filter::onUpstreamHeaders: retry (before anything went downstream) or forward. */
  onHeaders(a: UpstreamRequest, h: HeaderMap, eos: boolean, localReply: boolean): void {
    if (a !== this.attempt || this.finished) return;
    const status = Number(h.get(':status'));
    if (this.retryState) {
      // Local replies of upstream filters never trigger retries (router.proto upstream_http_filters).
      const would = !localReply && !this.downstreamResponseStarted && this.retryState.wouldRetryFromHeaders(status, h);
      const decision = this.retryState.shouldRetry(would);
      if (decision === 'retry') {
        this.releaseAttempt(a);
        a.reset();
        this.scheduleRetry();
        return;
      }
      if (decision === 'limit_exceeded') this.cb.streamInfo.setResponseFlag('URX');
    }
    // Router::Filter::onUpstreamHeaders: ResponseCodeDetails::ViaUpstream ("via_upstream") for a
    // response the upstream sent (an upstream filter's local reply keeps its own details).
    if (!localReply) this.cb.streamInfo.responseCodeDetails = 'via_upstream';
    this.downstreamResponseStarted = true;
    clearTimeout(this.perTryTimer);
    this.perTryTimer = undefined;
    this.resetIdleTimer();
    if (!this.suppressEnvoyHeaders && !localReply) h.set('x-envoy-upstream-service-time', String(Date.now() - this.attemptStart));
    this.cb.encodeHeaders(h, eos);
    if (eos) this.onUpstreamComplete(a);
  }

  onData(a: UpstreamRequest, d: Buffer, eos: boolean): void {
    if (a !== this.attempt || this.finished) return;
    this.resetIdleTimer();
    this.cb.encodeData(d, eos);
    if (eos) this.onUpstreamComplete(a);
  }

  onActivity(a: UpstreamRequest): void {
    if (a === this.attempt) this.resetIdleTimer();
  }

  onReset(a: UpstreamRequest, reason: ResetReason): void {
    if (a !== this.attempt || this.finished) return;
    this.attemptFailed(a, reason);
  }

  /** Router::Filter::onPerTryTimeout / onPerTryIdleTimeout: reset the attempt, maybe retry. */
  private onAttemptTimeout(reason: 'per_try_timeout' | 'per_try_idle_timeout'): void {
    const a = this.attempt;
    if (!a) return;
    this.clusterStat(reason === 'per_try_timeout' ? 'upstream_rq_per_try_timeout' : 'upstream_rq_per_try_idle_timeout');
    a.reset();
    this.attemptFailed(a, reason);
  }

  private attemptFailed(a: UpstreamRequest, reason: ResetReason): void {
    this.releaseAttempt(a);
    if (this.downstreamResponseStarted) {
      // Nothing can be retried once the response started: the downstream stream is reset.
      this.finish();
      this.cb.resetStream(`upstream_reset_after_response_started{${reason}}`);
      return;
    }
    this.cb.streamInfo.setResponseFlag(RESET_FLAG[reason]);
    if (this.retryState) {
      const decision = this.retryState.shouldRetry(this.retryState.wouldRetryFromReset(reason, a.requestStarted));
      if (decision === 'retry') {
        this.scheduleRetry();
        return;
      }
      // RetryStatus::NoRetryLimitExceeded → UpstreamRetryLimitExceeded (URX).
      if (decision === 'limit_exceeded') this.cb.streamInfo.setResponseFlag('URX');
    }
    this.finish();
    if (reason === 'per_try_timeout' || reason === 'per_try_idle_timeout') {
      this.cb.sendLocalReply(504, 'upstream request timeout', undefined, `upstream_${reason}`);
      return;
    }
    const text = RESET_TEXT[reason];
    this.cb.sendLocalReply(
      503,
      `upstream connect error or disconnect/reset before headers. reset reason: ${text}`,
      undefined,
      `upstream_reset_before_response_started{${text.replace(/ /g, '_')}}`,
    );
  }

  /** Router::Filter::onResponseTimeout: 504 before the response started, reset after. */
  private onGlobalTimeout(): void {
    if (this.finished) return;
    this.ctx.stats.inc(`cluster.${this.cluster?.name}.upstream_rq_timeout`);
    this.cb.streamInfo.setResponseFlag('UT');
    const a = this.attempt;
    if (a) {
      this.releaseAttempt(a);
      a.reset();
    }
    const started = this.downstreamResponseStarted;
    this.finish();
    if (started) this.cb.resetStream('upstream_response_timeout');
    else this.cb.sendLocalReply(504, 'upstream request timeout', undefined, 'upstream_response_timeout');
  }

  private onUpstreamComplete(a: UpstreamRequest): void {
    this.releaseAttempt(a);
    a.complete();
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.globalTimer);
    clearTimeout(this.retryTimer);
    this.clearAttemptTimers();
    this.retryState?.releaseRetryResource();
  }

  /** A local reply took over (or the stream ended): cancel everything upstream. */
  onLocalReplyStarted(): void {
    this.cleanup();
  }

  onDestroy(): void {
    this.cleanup();
  }

  private cleanup(): void {
    const a = this.attempt;
    if (a) {
      this.releaseAttempt(a);
      a.reset();
    }
    this.finish();
  }
}
