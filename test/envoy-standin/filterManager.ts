/**
 * A small model of Envoy's FilterManager (source/common/http/filter_manager.cc): an ordered chain of
 * decoder filters ending in a terminal filter (the router downstream, upstream_codec upstream), and
 * the encoder filters in reverse order ending in a sink (the client connection, or the router for an
 * upstream attempt).
 *
 * Filters push events explicitly: a filter that wants to hold (Envoy's StopIteration) simply does
 * not call `continueDecodeHeaders` yet, and later resumes in order (headers, buffered data,
 * end_stream), as ActiveStreamFilterBase::commonContinue does.
 *
 * Local replies follow FilterManager::sendLocalReply:
 * - first every filter's onLocalReply runs (FilterManager::onLocalReply). The ext_proc filter
 *   then ends its processing and resets its side stream, so a local reply never reaches an
 *   ext_proc server (ext_proc.cc Filter::onLocalReply; runtime guard
 *   envoy.reloadable_features.skip_ext_proc_on_local_reply, default true since Envoy 1.34.0, the
 *   fix of CVE-2025-30157);
 * - the HCM's local_reply_config rewrites code, body and content type (localReply.ts);
 * - no response headers in the chain yet → the reply goes through *all* encoder filters
 *   (sendLocalReplyViaFilterChain encodes from `nullptr`, i.e. the first encoder filter) — which
 *   pass it on untouched when they are ext_proc filters (see above);
 * - response headers in the chain but not yet sent → straight to the sink (sendDirectLocalReply);
 * - response already sent downstream → the stream is reset.
 *
 * Not modelled: watermarks/flow control (no backpressure; only the BUFFERED buffer limits are
 * enforced), trailers (the HTTP/1 codec drops them by default), metadata frames.
 */
import { HeaderMap } from './headers.js';
import type { LocalReplyConfig } from './config/index.js';
import type { FormatContext } from './formatter.js';
import { rewriteLocalReply } from './localReply.js';
import type { EnvoyVersion } from './version.js';
import type { JsonObject } from './proto.js';
import type { ResolvedRoute } from './router.js';
import type { StandinStats } from './stats.js';

/** Per-downstream-request state shared by downstream and upstream filters (StreamInfo). */
export class StreamInfo {
  readonly startTime = Date.now();
  dynamicMetadata: Record<string, JsonObject> = {};
  routeName?: string;
  upstreamCluster?: string;
  /** host:port of the latest attempt. */
  upstreamHost?: string;
  upstreamHostsAttempted: string[] = [];
  attemptCount = 0;
  responseCode?: number;
  responseCodeDetails?: string;
  requestHeaders?: HeaderMap;
  responseHeaders?: HeaderMap;
  /**
   * Response flags by short name (UF, URX, UT, UO, NC, NR, UC, UR, LR, ...), as
   * StreamInfo::setResponseFlag records them; read by response_flag_filter and %RESPONSE_FLAGS%.
   */
  responseFlags: string[] = [];
  /** The HCM judged the request internal (conn_manager_utility.cc); undefined upstream-only. */
  internalRequest?: boolean;
  /** The trusted downstream address the HCM settled on (XFF or the peer). */
  downstreamRemoteAddress?: string;

  setResponseFlag(flag: string): void {
    if (!this.responseFlags.includes(flag)) this.responseFlags.push(flag);
  }

  /**
   * StreamInfo::setDynamicMetadata: `(*metadata.mutable_filter_metadata())[ns].MergeFrom(value)`,
   * i.e. keys of the namespace are merged, each key's value replaced.
   */
  setDynamicMetadata(ns: string, value: JsonObject): void {
    this.dynamicMetadata[ns] = { ...(this.dynamicMetadata[ns] ?? {}), ...value };
  }
}

export interface UpstreamHostInfo {
  /** host:port */
  address: string;
  hostname?: string;
  priority: number;
  metadata: Record<string, JsonObject>;
}

export interface StreamFilter {
  decodeHeaders?(headers: HeaderMap, endStream: boolean): void;
  decodeData?(data: Buffer, endStream: boolean): void;
  encodeHeaders?(headers: HeaderMap, endStream: boolean): void;
  encodeData?(data: Buffer, endStream: boolean): void;
  /** A local reply took over the response: stop producing output (the router cancels upstream). */
  onLocalReplyStarted?(): void;
  /** StreamFilterBase::onLocalReply: told before a local reply is built, whichever filter sent it. */
  onLocalReply?(): void;
  onDestroy(): void;
}

export interface ResponseSink {
  headers(headers: HeaderMap, endStream: boolean, localReply: boolean): void;
  data(data: Buffer, endStream: boolean): void;
  /** The response had already started and is aborted. */
  reset(reason: string): void;
}

export interface RouteProvider {
  route(): ResolvedRoute | null;
  clearRouteCache(): void;
}

export interface FilterCallbacks {
  readonly streamInfo: StreamInfo;
  readonly stats: StandinStats;
  readonly isUpstream: boolean;
  /** per_connection_buffer_limit_bytes of the listener (downstream) or cluster (upstream). */
  readonly bufferLimit: number;
  /** The Envoy release line the stand-in behaves like (version.ts). */
  readonly envoyVersion: EnvoyVersion;
  /** The host of this upstream attempt (upstream filter chains only). */
  readonly upstreamHost?: UpstreamHostInfo;
  route(): ResolvedRoute | null;
  clearRouteCache(): void;
  requestHeaders(): HeaderMap | undefined;
  continueDecodeHeaders(headers: HeaderMap, endStream: boolean): void;
  continueDecodeData(data: Buffer, endStream: boolean): void;
  continueEncodeHeaders(headers: HeaderMap, endStream: boolean): void;
  continueEncodeData(data: Buffer, endStream: boolean): void;
  /** For the terminal filter: starts the response through the encoder filters. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  encodeData(data: Buffer, endStream: boolean): void;
  sendLocalReply(code: number, body: string | Buffer, modifyHeaders: ((h: HeaderMap) => void) | undefined, details: string): void;
  /**
   * A BUFFERED filter's buffer exceeded bufferLimit: FilterManager requestDataTooLarge (413) /
   * responseDataTooLarge (500, or reset once headers went out).
   */
  bufferOverLimit(direction: 'request' | 'response'): void;
  resetStream(reason: string): void;
}

export type FilterFactory = (cb: FilterCallbacks) => StreamFilter;

export interface FilterManagerOptions {
  streamInfo: StreamInfo;
  stats: StandinStats;
  isUpstream: boolean;
  bufferLimit: number;
  envoyVersion: EnvoyVersion;
  upstreamHost?: UpstreamHostInfo;
  routes: RouteProvider;
  sink: ResponseSink;
  factories: FilterFactory[];
  /** The HCM's local_reply_config (downstream filter manager only). */
  localReply?: LocalReplyConfig;
  /** Builds the substitution-format context for local_reply_config formats. */
  formatContext?: () => FormatContext;
}

/** Http::Utility::sendLocalReply: text/plain body with content-length, none for an empty body. */
export function buildLocalReply(
  code: number,
  body: string | Buffer,
  modify: ((h: HeaderMap) => void) | undefined,
  rewrite?: (code: number, body: Buffer) => { code: number; body: Buffer; contentType?: string },
): { headers: HeaderMap; body: Buffer } {
  const h = new HeaderMap();
  h.set(':status', String(code));
  modify?.(h);
  let b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  let contentType = 'text/plain';
  let changed = false;
  if (rewrite) {
    // prepareLocalReply: the rewrite callback (local_reply_config) runs after modify_headers.
    const r = rewrite(code, b);
    h.set(':status', String(r.code));
    changed = !r.body.equals(b);
    b = r.body;
    if (r.contentType !== undefined) contentType = r.contentType;
  }
  if (b.length > 0) {
    h.set('content-length', String(b.length));
    // "If the content-type is not set, set it. Alternately if the rewrite function has changed
    // body_text ..., set the content type to be based on the changed body."
    if (!h.has('content-type') || changed) h.set('content-type', contentType);
  } else {
    h.remove('content-length');
    h.remove('content-type');
  }
  return { headers: h, body: b };
}

export class FilterManager {
  readonly streamInfo: StreamInfo;
  private readonly filters: StreamFilter[] = [];
  private decoders: StreamFilter[] = [];
  private encoders: StreamFilter[] = [];
  private requestHeaderMap?: HeaderMap;
  private decodeAborted = false;
  private localReplyStarted = false;
  private encoderBypassed = false;
  private responseInChain = false;
  private responseSent = false;
  private responseEnded = false;
  private destroyed = false;

  constructor(private readonly opts: FilterManagerOptions) {
    this.streamInfo = opts.streamInfo;
    for (const factory of opts.factories) {
      const holder: { filter?: StreamFilter } = {};
      const filter = factory(this.callbacksFor(holder));
      holder.filter = filter;
      this.filters.push(filter);
    }
    this.decoders = this.filters.filter((f) => f.decodeHeaders);
    this.encoders = this.filters.filter((f) => f.encodeHeaders).reverse();
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.requestHeaderMap = headers;
    this.streamInfo.requestHeaders ??= headers;
    this.dispatchDecodeHeaders(0, headers, endStream);
  }

  decodeData(data: Buffer, endStream: boolean): void {
    this.dispatchDecodeData(0, data, endStream);
  }

  /** Ends the stream: every filter's onDestroy (ext_proc closes its gRPC stream, the router resets upstream). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const f of this.filters) f.onDestroy();
  }

  sendLocalReply(code: number, body: string | Buffer, modify: ((h: HeaderMap) => void) | undefined, details: string): void {
    if (this.destroyed) return;
    this.opts.stats.inc(this.opts.isUpstream ? 'upstream_local_replies' : 'local_replies');
    this.streamInfo.responseCodeDetails = details;
    this.decodeAborted = true;
    // FilterManager::onLocalReply: every filter hears of it first (ext_proc stops processing).
    for (const f of this.filters) f.onLocalReply?.();
    if (this.destroyed) return;
    const rewrite = this.rewriter();
    if (!this.responseInChain) {
      // sendLocalReplyViaFilterChain: through every encoder filter.
      this.startLocalReply();
      this.responseInChain = true;
      const r = buildLocalReply(code, body, modify, rewrite);
      this.streamInfo.responseHeaders = r.headers;
      this.dispatchEncodeHeaders(0, r.headers, r.body.length === 0);
      if (r.body.length > 0) this.dispatchEncodeData(0, r.body, true);
    } else if (!this.responseSent) {
      // sendDirectLocalReply: response headers exist but were not sent; bypass the filters.
      this.startLocalReply();
      this.encoderBypassed = true;
      const r = buildLocalReply(code, body, modify, rewrite);
      this.streamInfo.responseHeaders = r.headers;
      this.toSinkHeaders(r.headers, r.body.length === 0);
      if (r.body.length > 0) this.toSinkData(r.body, true);
    } else {
      // "Prior headers have already been sent": reset.
      this.resetStream(details);
    }
  }

  /** local_reply_config of the HCM, evaluated against this stream (downstream only). */
  private rewriter(): ((code: number, body: Buffer) => { code: number; body: Buffer; contentType?: string }) | undefined {
    const cfg = this.opts.localReply;
    if (!cfg) return undefined;
    return (code, body) => {
      // LocalReplyImpl::rewrite sets the response code first: status_code filters read it.
      this.streamInfo.responseCode = code;
      const ctx = this.opts.formatContext?.() ?? { dynamicMetadata: this.streamInfo.dynamicMetadata };
      return rewriteLocalReply(cfg, this.requestHeaderMap, code, body, { ...ctx, responseCode: code }, this.streamInfo.responseFlags);
    };
  }

  resetStream(reason: string): void {
    if (this.destroyed) return;
    this.opts.stats.inc(this.opts.isUpstream ? 'upstream_resets' : 'downstream_resets');
    this.streamInfo.responseCodeDetails ??= reason;
    this.opts.sink.reset(reason);
    this.destroy();
  }

  private startLocalReply(): void {
    this.localReplyStarted = true;
    for (const f of this.filters) f.onLocalReplyStarted?.();
  }

  private dispatchDecodeHeaders(i: number, h: HeaderMap, eos: boolean): void {
    if (this.decodeAborted || this.destroyed) return;
    this.decoders[i]?.decodeHeaders!(h, eos);
  }

  private dispatchDecodeData(i: number, d: Buffer, eos: boolean): void {
    if (this.decodeAborted || this.destroyed) return;
    this.decoders[i]?.decodeData?.(d, eos);
  }

  private dispatchEncodeHeaders(i: number, h: HeaderMap, eos: boolean): void {
    if (this.destroyed || this.encoderBypassed) return;
    const f = this.encoders[i];
    if (f) f.encodeHeaders!(h, eos);
    else this.toSinkHeaders(h, eos);
  }

  private dispatchEncodeData(i: number, d: Buffer, eos: boolean): void {
    if (this.destroyed || this.encoderBypassed) return;
    const f = this.encoders[i];
    if (f) f.encodeData?.(d, eos);
    else this.toSinkData(d, eos);
  }

  private toSinkHeaders(h: HeaderMap, eos: boolean): void {
    if (this.responseSent) return;
    this.responseSent = true;
    this.streamInfo.responseHeaders = h;
    const status = Number(h.get(':status'));
    if (!this.opts.isUpstream) this.streamInfo.responseCode = status;
    if (eos) this.responseEnded = true;
    this.opts.sink.headers(h, eos, this.localReplyStarted);
  }

  private toSinkData(d: Buffer, eos: boolean): void {
    if (!this.responseSent || this.responseEnded) return;
    if (d.length === 0 && !eos) return;
    if (eos) this.responseEnded = true;
    this.opts.sink.data(d, eos);
  }

  private callbacksFor(holder: { filter?: StreamFilter }): FilterCallbacks {
    const self = this;
    const decoderIndex = () => this.decoders.indexOf(holder.filter!);
    const encoderIndex = () => this.encoders.indexOf(holder.filter!);
    return {
      streamInfo: this.streamInfo,
      stats: this.opts.stats,
      isUpstream: this.opts.isUpstream,
      bufferLimit: this.opts.bufferLimit,
      envoyVersion: this.opts.envoyVersion,
      upstreamHost: this.opts.upstreamHost,
      route: () => this.opts.routes.route(),
      clearRouteCache: () => this.opts.routes.clearRouteCache(),
      requestHeaders: () => this.requestHeaderMap,
      continueDecodeHeaders: (h, eos) => this.dispatchDecodeHeaders(decoderIndex() + 1, h, eos),
      continueDecodeData: (d, eos) => {
        if (d.length === 0 && !eos) return;
        this.dispatchDecodeData(decoderIndex() + 1, d, eos);
      },
      continueEncodeHeaders: (h, eos) => this.dispatchEncodeHeaders(encoderIndex() + 1, h, eos),
      continueEncodeData: (d, eos) => {
        if (d.length === 0 && !eos) return;
        this.dispatchEncodeData(encoderIndex() + 1, d, eos);
      },
      encodeHeaders: (h, eos) => {
        // Output of the terminal filter after a local reply took over is dropped.
        if (this.localReplyStarted || this.destroyed) return;
        this.responseInChain = true;
        this.streamInfo.responseHeaders = h;
        this.dispatchEncodeHeaders(0, h, eos);
      },
      encodeData: (d, eos) => {
        if (this.localReplyStarted || this.destroyed) return;
        this.dispatchEncodeData(0, d, eos);
      },
      sendLocalReply: (code, body, modify, details) => this.sendLocalReply(code, body, modify, details),
      bufferOverLimit(direction) {
        if (direction === 'request') {
          self.opts.stats.inc('downstream_rq_too_large');
          self.sendLocalReply(413, 'Payload Too Large', undefined, 'request_payload_too_large');
        } else {
          self.opts.stats.inc('rs_too_large');
          self.sendLocalReply(500, 'Internal Server Error', undefined, 'response_payload_too_large');
        }
      },
      resetStream: (reason) => this.resetStream(reason),
    };
  }
}
