/**
 * One upstream attempt (Router::UpstreamRequest) with its own upstream HTTP filter chain: the
 * cluster's `HttpProtocolOptions.http_filters` (ext_proc, header_mutation) instantiated per
 * attempt (facts §2.2), ending in upstream_codec, which speaks HTTP/1.1 to the endpoint with
 * node:http. Upstream filters share the downstream StreamInfo (dynamic metadata), and the request
 * header map is the router's, so their mutations persist into the next attempt (facts §3.4).
 */
import type { EnvoyVersion } from './version.js';
import http from 'node:http';
import { BodyChunkFeeder, Chunker, type Prng } from './chunker.js';
import type { ClusterConfig, HeaderMutationOp, HttpFilterConfig } from './config/index.js';
import type { ExtProcClients } from './extProcClient.js';
import { ExtProcFilter } from './extProcFilter.js';
import { FilterManager, type FilterCallbacks, type FilterFactory, type RouteProvider, type StreamFilter, type StreamInfo } from './filterManager.js';
import type { FormatContext } from './formatter.js';
import { HeaderMap } from './headers.js';
import type { Host, ResetReason } from './retry.js';
import type { StandinStats } from './stats.js';

export interface UpstreamEvents {
  onHeaders(a: UpstreamRequest, headers: HeaderMap, endStream: boolean, localReply: boolean): void;
  onData(a: UpstreamRequest, data: Buffer, endStream: boolean): void;
  onReset(a: UpstreamRequest, reason: ResetReason): void;
  /** Any upstream progress (per_try_idle_timeout is reset on it). */
  onActivity(a: UpstreamRequest): void;
}

export interface UpstreamContext {
  stats: StandinStats;
  clients: ExtProcClients;
  streamInfo: StreamInfo;
  routes: RouteProvider;
  rng: Prng;
  envoyVersion: EnvoyVersion;
}

export function formatContextOf(si: StreamInfo, requestHeaders?: HeaderMap, responseHeaders?: HeaderMap): FormatContext {
  return {
    dynamicMetadata: si.dynamicMetadata,
    requestHeaders: requestHeaders ?? si.requestHeaders,
    responseHeaders: responseHeaders ?? si.responseHeaders,
    responseCode: si.responseCode,
    responseCodeDetails: si.responseCodeDetails,
    routeName: si.routeName,
    upstreamCluster: si.upstreamCluster,
    upstreamHost: si.upstreamHost,
    attemptCount: si.attemptCount,
    durationMs: Date.now() - si.startTime,
  };
}

/** envoy.filters.http.header_mutation with substitution (e.g. %DYNAMIC_METADATA(ns:key)%). */
class HeaderMutationFilter implements StreamFilter {
  constructor(
    private readonly cb: FilterCallbacks,
    private readonly request: HeaderMutationOp[],
    private readonly response: HeaderMutationOp[],
  ) {}

  private apply(ops: HeaderMutationOp[], h: HeaderMap): void {
    const ctx = formatContextOf(this.cb.streamInfo, this.cb.requestHeaders());
    for (const op of ops) {
      if (op.kind === 'remove') {
        h.remove(op.key);
        continue;
      }
      const v = String(op.value!.render(ctx, 'header'));
      // HeaderValueOption.keep_empty_value: "If false, ... header with empty value will be skipped".
      if (v === '' && !op.keepEmptyValue) continue;
      switch (op.appendAction) {
        case 'APPEND_IF_EXISTS_OR_ADD':
          h.add(op.key, v);
          break;
        case 'ADD_IF_ABSENT':
          if (!h.has(op.key)) h.add(op.key, v);
          break;
        case 'OVERWRITE_IF_EXISTS_OR_ADD':
          h.set(op.key, v);
          break;
        case 'OVERWRITE_IF_EXISTS':
          if (h.has(op.key)) h.set(op.key, v);
          break;
      }
    }
  }

  decodeHeaders(h: HeaderMap, eos: boolean): void {
    this.apply(this.request, h);
    this.cb.continueDecodeHeaders(h, eos);
  }
  decodeData(d: Buffer, eos: boolean): void {
    this.cb.continueDecodeData(d, eos);
  }
  encodeHeaders(h: HeaderMap, eos: boolean): void {
    this.apply(this.response, h);
    this.cb.continueEncodeHeaders(h, eos);
  }
  encodeData(d: Buffer, eos: boolean): void {
    this.cb.continueEncodeData(d, eos);
  }
  onDestroy(): void {}
}

/** envoy.filters.http.upstream_codec: the HTTP/1.1 client connection to the chosen endpoint. */
class CodecFilter implements StreamFilter {
  private req?: http.ClientRequest;
  private connected = false;
  private finished = false;
  private destroyed = false;

  constructor(
    private readonly cb: FilterCallbacks,
    private readonly attempt: UpstreamRequest,
  ) {}

  decodeHeaders(h: HeaderMap, eos: boolean): void {
    this.attempt.applyPendingHostRewrite();
    const ep = this.attempt.host.endpoint;
    if (this.attempt.cluster.tls && !ep.overridden) {
      // Real Envoy would speak TLS to this endpoint; the stand-in only speaks plain HTTP.
      this.cb.stats.errors.push(`stand-in: cluster ${this.attempt.cluster.name} is TLS and its endpoint ${ep.host}:${ep.port} was not overridden (clusterEndpoints)`);
      queueMicrotask(() => this.fail('connection_failure'));
      return;
    }
    // HTTP/1 codec: :authority becomes Host, the other pseudo-headers the request line.
    const flat: string[] = ['host', h.get(':authority') ?? ''];
    for (const [k, v] of h.regularPairs()) if (k !== 'host') flat.push(k, v);
    const req = http.request({
      host: ep.host,
      port: ep.port,
      family: this.attempt.cluster.ipFamily,
      method: h.get(':method') ?? 'GET',
      path: h.get(':path') ?? '/',
      headers: flat as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      agent: false,
    });
    this.req = req;
    let connectTimer: NodeJS.Timeout | undefined;
    req.on('socket', (s) => {
      if (!s.connecting) {
        this.connected = true;
        this.attempt.requestStarted = true;
        return;
      }
      // cluster connect_timeout
      connectTimer = setTimeout(() => req.destroy(new Error('connect timeout')), this.attempt.cluster.connectTimeoutMs);
      s.once('connect', () => {
        clearTimeout(connectTimer);
        this.connected = true;
        // The codec writes the request headers as soon as the connection is up (below).
        this.attempt.requestStarted = true;
      });
    });
    req.on('error', () => {
      clearTimeout(connectTimer);
      this.fail(this.connected ? 'connection_termination' : 'connection_failure');
    });
    req.on('response', (res) => this.onResponse(res, h.get(':method') === 'HEAD'));
    // Envoy's HTTP/1 codec writes the request headers as soon as they reach it
    // (ClientConnectionImpl encodeHeaders → the connection's write buffer); node's ClientRequest
    // would hold them until the first body write, so the upstream could not answer (or even see
    // the request) before the first body chunk.
    if (eos) req.end();
    else req.flushHeaders();
  }

  decodeData(d: Buffer, eos: boolean): void {
    if (!this.req || this.destroyed) return;
    if (d.length > 0) this.req.write(d);
    if (eos) this.req.end();
  }

  private onResponse(res: http.IncomingMessage, head: boolean): void {
    if (this.destroyed) return;
    this.attempt.activity();
    const status = res.statusCode ?? 502;
    const h = HeaderMap.fromPairs([[':status', String(status)]]);
    for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.add(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
    const cl = res.headers['content-length'];
    const noBody = head || status === 204 || status === 304 || cl === '0';
    this.cb.encodeHeaders(h, noBody);
    if (noBody) {
      this.finished = true;
      res.resume();
      return;
    }
    const feeder = new BodyChunkFeeder(
      new Chunker(this.attempt.rng),
      cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined,
      (piece, end) => {
        if (end) this.finished = true;
        this.cb.encodeData(piece, end);
      },
    );
    res.on('data', (d: Buffer) => {
      if (this.destroyed) return;
      this.attempt.activity();
      feeder.push(d);
    });
    res.on('end', () => {
      if (!this.destroyed) feeder.end();
    });
    res.on('error', () => this.fail('connection_termination'));
    res.on('close', () => {
      if (!res.complete) this.fail('connection_termination');
    });
  }

  private fail(reason: ResetReason): void {
    if (this.destroyed || this.finished) return;
    this.attempt.codecReset(reason);
  }

  onDestroy(): void {
    this.destroyed = true;
    if (this.req && !this.finished) this.req.destroy();
  }
}

export class UpstreamRequest {
  readonly fm: FilterManager;
  private done = false;
  private pendingHostRewrite?: string;
  private headers?: HeaderMap;
  /**
   * The request headers reached the upstream connection (UpstreamRequest's upstream_request_started
   * in retry terms): reset-before-request retries only resets that come before this.
   */
  requestStarted = false;

  constructor(
    readonly cluster: ClusterConfig,
    readonly host: Host,
    readonly rng: Prng,
    ctx: UpstreamContext,
    private readonly events: UpstreamEvents,
    autoHostRewrite: boolean,
  ) {
    if (autoHostRewrite && host.endpoint.hostname) this.pendingHostRewrite = host.endpoint.hostname;
    const factories: FilterFactory[] = cluster.upstreamFilters.map((f: HttpFilterConfig): FilterFactory => {
      if (f.type === 'ext_proc') return (cb) => new ExtProcFilter(cb, f.config, ctx.clients);
      if (f.type === 'header_mutation') return (cb) => new HeaderMutationFilter(cb, f.request, f.response);
      throw new Error(`stand-in: unexpected upstream filter ${f.type}`);
    });
    factories.push((cb) => new CodecFilter(cb, this));
    this.fm = new FilterManager({
      streamInfo: ctx.streamInfo,
      stats: ctx.stats,
      isUpstream: true,
      bufferLimit: cluster.bufferLimitBytes,
      envoyVersion: ctx.envoyVersion,
      upstreamHost: {
        address: host.address,
        hostname: host.endpoint.hostname,
        priority: host.priority,
        metadata: host.endpoint.metadata,
      },
      routes: ctx.routes,
      factories,
      sink: {
        headers: (h, eos, local) => {
          if (!this.done) this.events.onHeaders(this, h, eos, local);
        },
        data: (d, eos) => {
          if (!this.done) this.events.onData(this, d, eos);
        },
        reset: () => this.codecReset('connection_termination'),
      },
    });
  }

  /** Router → upstream: headers go through the upstream filters; the codec connects when they arrive. */
  start(headers: HeaderMap, endStream: boolean): void {
    this.headers = headers;
    this.fm.decodeHeaders(headers, endStream);
    // If an upstream filter holds the headers (ext_proc awaiting its answer), the connection pool
    // is ready meanwhile and UpstreamRequest::onPoolReady applies auto_host_rewrite to the shared
    // header map: the ext_proc saw the original :authority, and a later ext_proc mutation of
    // :authority would still win (facts §3.6 marks the ordering UNSURE).
    this.applyPendingHostRewrite();
  }

  applyPendingHostRewrite(): void {
    if (this.pendingHostRewrite !== undefined && this.headers) {
      this.headers.set(':authority', this.pendingHostRewrite);
      this.pendingHostRewrite = undefined;
    }
  }

  sendData(d: Buffer, endStream: boolean): void {
    this.fm.decodeData(d, endStream);
  }

  activity(): void {
    if (!this.done) this.events.onActivity(this);
  }

  /** The connection failed or broke (before or after the response started: the router decides). */
  codecReset(reason: ResetReason): void {
    if (this.done) return;
    this.done = true;
    this.fm.destroy();
    this.events.onReset(this, reason);
  }

  /** The router gives up on this attempt (retry, timeout, downstream gone). */
  reset(): void {
    if (this.done) return;
    this.done = true;
    this.fm.destroy();
  }

  /** The response completed: the attempt's filters are destroyed (ext_proc streams closed). */
  complete(): void {
    if (this.done) return;
    this.done = true;
    this.fm.destroy();
  }
}
