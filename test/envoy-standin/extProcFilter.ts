/**
 * Envoy's ext_proc HTTP filter (source/extensions/filters/http/ext_proc/ext_proc.cc and
 * processor_state.cc), as a stand-in filter for both the HCM chain and an upstream (per-attempt)
 * chain. Behaviour and citations are per method; facts § refers to
 * ../../../shared/docs/envoy-ext-proc-facts.md.
 *
 * Implemented: header SEND/SKIP/DEFAULT; body NONE, STREAMED, BUFFERED, BUFFERED_PARTIAL;
 * mode_override (allow_mode_override, allowed_override_modes); mutation rules; CONTINUE_AND_REPLACE;
 * immediate_response; clear_route_cache / route_cache_action; dynamic metadata (forwarding /
 * receiving untyped namespaces); attributes; message_timeout / override_message_timeout;
 * failure_mode_allow; status_on_error; disable_immediate_response; observability_mode;
 * stream close optimisation; protocol_config.
 * Refused (at config load): FULL_DUPLEX_STREAMED and GRPC body modes, trailer SEND, per-route
 * overrides, forward_rules, typed metadata, send_body_without_waiting_for_header_response.
 */
import type { BodySendMode, ExtProcConfig, ProcessingMode } from './config.js';
import { BODY_SEND_MODES, HEADER_SEND_MODES } from './config.js';
import type { ExtProcClients, SideStream } from './extProcClient.js';
import type { FilterCallbacks, StreamFilter } from './filterManager.js';
import type { HeaderMap } from './headers.js';
import { MutationChecker, applyBodyMutation, applyHeaderMutations, bodyMutationLength } from './mutationRules.js';
import {
  enumName,
  jsonToStruct,
  statusCodeNumber,
  structToJson,
  toBuffer,
  type JsonObject,
  type PbCommonResponse,
  type PbHttpBody,
  type PbHttpHeaders,
  type PbImmediateResponse,
  type PbProcessingMode,
  type PbStruct,
  type ProcessingRequest,
  type ProcessingResponse,
} from './proto.js';

/** ext_proc.cc FilterName: the key of ProcessingRequest.attributes. */
export const EXT_PROC_FILTER_NAME = 'envoy.filters.http.ext_proc';

type CallbackState =
  | 'Idle'
  | 'HeadersCallback'
  | 'BufferedBodyCallback'
  | 'StreamedBodyCallback'
  | 'BufferedPartialBodyCallback'
  | 'TrailersCallback';

interface QueuedChunk {
  data: Buffer;
  endStream: boolean;
}

/** absl::Status as the ext_proc code uses it: FailedPrecondition marks a spurious message. */
type Status = { ok: true } | { ok: false; spurious: boolean; message: string };
const OK: Status = { ok: true };
const spurious = (message: string): Status => ({ ok: false, spurious: true, message });
const failure = (message: string): Status => ({ ok: false, spurious: false, message });

const EMPTY = Buffer.alloc(0);

/** One direction's state (ProcessorState: DecodingProcessorState / EncodingProcessorState). */
class ProcessorState {
  sendHeaders = true;
  sendTrailers = false;
  bodyMode: BodySendMode = 'NONE';
  callbackState: CallbackState = 'Idle';
  /** headers_: the map mutations apply to while a response for it is awaited. */
  headers: HeaderMap | null = null;
  /** The map forwarded down the chain on continue. */
  headerMap?: HeaderMap;
  paused = false;
  completeBodyAvailable = false;
  noBody = false;
  trailersAvailable = false;
  bodyReplaced = false;
  partialBodyProcessed = false;
  /** Data held by the filter manager for this filter (StopIterationAndBuffer/Watermark). */
  bufferedData: Buffer | null = null;
  chunkQueue: QueuedChunk[] = [];
  sentAttributes = false;
  timer?: NodeJS.Timeout;
  newTimeoutReceived = false;
  /** end_stream seen by this filter in this direction. */
  observedEnd = false;
  headersForwarded = false;
  endForwarded = false;

  constructor(readonly dir: 'request' | 'response') {}

  /** setProcessingModeInternal: headers sent unless SKIP, trailers only if SEND. */
  setProcessingMode(m: ProcessingMode): void {
    if (this.dir === 'request') {
      this.sendHeaders = m.request_header_mode !== 'SKIP';
      this.sendTrailers = m.request_trailer_mode === 'SEND';
      this.bodyMode = m.request_body_mode;
    } else {
      this.sendHeaders = m.response_header_mode !== 'SKIP';
      this.sendTrailers = m.response_trailer_mode === 'SEND';
      this.bodyMode = m.response_body_mode;
    }
  }

  /**
   * shouldRemoveContentLength (processing_mode.proto BodySendMode comment, facts §2.11): Envoy drops
   * content-length when the body may change size without the server being able to fix the header.
   */
  shouldRemoveContentLength(): boolean {
    return (
      this.bodyMode === 'STREAMED' ||
      this.bodyMode === 'BUFFERED_PARTIAL' ||
      this.bodyMode === 'FULL_DUPLEX_STREAMED' ||
      (this.bodyMode === 'BUFFERED' && !this.sendHeaders)
    );
  }

  /** EncodingProcessorState::noExternalProcess (used by the stream close optimisation). */
  noExternalProcess(): boolean {
    return !this.sendHeaders && this.bodyMode === 'NONE' && !this.sendTrailers;
  }

  queueBytes(): number {
    return this.chunkQueue.reduce((n, c) => n + c.data.length, 0);
  }

  /** ChunkQueue::consolidate: one chunk with all queued bytes and the last chunk's end_stream. */
  consolidate(): QueuedChunk {
    const c: QueuedChunk = {
      data: Buffer.concat(this.chunkQueue.map((q) => q.data)),
      endStream: this.chunkQueue[this.chunkQueue.length - 1]?.endStream ?? false,
    };
    this.chunkQueue = [c];
    return c;
  }

  appendBuffered(data: Buffer): void {
    this.bufferedData = this.bufferedData ? Buffer.concat([this.bufferedData, data]) : Buffer.from(data);
  }
}

export class ExtProcFilter implements StreamFilter {
  private readonly decoding = new ProcessorState('request');
  private readonly encoding = new ProcessorState('response');
  private readonly checker: MutationChecker;
  private stream: SideStream | null = null;
  private processingComplete = false;
  private sentImmediateResponse = false;
  private protocolConfigSent = false;
  private readonly statPrefix: string;

  constructor(
    private readonly cb: FilterCallbacks,
    private readonly config: ExtProcConfig,
    private readonly clients: ExtProcClients,
  ) {
    this.decoding.setProcessingMode(config.processingMode);
    this.encoding.setProcessingMode(config.processingMode);
    this.checker = new MutationChecker(config.mutationRules);
    // FilterConfig::generateStats: StrCat(prefix, "ext_proc.", config.stat_prefix()), each
    // counter then joined with statPrefixJoin (envoy/stats/stats_macros.h: a "." in between unless
    // the prefix is empty or already ends with one) — so stat_prefix "observer" counts under
    // `ext_proc.observer.streams_started`. (`upstream_ext_proc.` for upstream filters is the
    // stand-in's own name, to keep them apart.)
    const base = cb.isUpstream ? 'upstream_ext_proc.' : 'ext_proc.';
    const sp = config.statPrefix;
    this.statPrefix = sp === '' ? base : sp.endsWith('.') ? base + sp : `${base}${sp}.`;
  }

  private stat(name: string): void {
    this.cb.stats.inc(this.statPrefix + name);
  }

  // ---- filter interface ---------------------------------------------------------------------------

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.onHeaders(this.decoding, headers, endStream);
  }
  decodeData(data: Buffer, endStream: boolean): void {
    this.onData(this.decoding, data, endStream);
  }
  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.onHeaders(this.encoding, headers, endStream);
  }
  encodeData(data: Buffer, endStream: boolean): void {
    this.onData(this.encoding, data, endStream);
  }

  /** Filter::onDestroy: processing ends; the stream is closed (deferred in observability mode). */
  onDestroy(): void {
    this.processingComplete = true;
    this.stopTimer(this.decoding);
    this.stopTimer(this.encoding);
    if (this.config.observabilityMode && this.stream) {
      // deferredCloseStream: the side stream outlives the request by deferred_close_timeout so
      // send-and-go messages are not lost.
      const s = this.stream;
      this.stream = null;
      setTimeout(() => s.close(), this.config.deferredCloseTimeoutMs).unref();
      return;
    }
    this.closeStream();
  }

  // ---- forwarding (the filter manager's continue/inject) ------------------------------------------

  private forwardHeaders(state: ProcessorState, h: HeaderMap, eos: boolean): void {
    state.headersForwarded = true;
    if (eos) state.endForwarded = true;
    if (state.dir === 'request') this.cb.continueDecodeHeaders(h, eos);
    else this.cb.continueEncodeHeaders(h, eos);
  }

  /** Data to the next filter; like injectDecodedDataToFilterChain it continues held headers first. */
  private forwardData(state: ProcessorState, data: Buffer, eos: boolean): void {
    if (state.endForwarded) return;
    if (data.length === 0 && !eos) return;
    if (!state.headersForwarded) this.forwardHeaders(state, state.headerMap!, false);
    if (eos) state.endForwarded = true;
    if (state.dir === 'request') this.cb.continueDecodeData(data, eos);
    else this.cb.continueEncodeData(data, eos);
  }

  /** ProcessorState::continueIfNecessary. */
  private continueIfNecessary(state: ProcessorState): void {
    if (!state.paused) return;
    state.paused = false;
    // ActiveStreamFilterBase::commonContinue: headers (end_stream if nothing follows), then the
    // buffered data; a StopIterationNoBuffer end_stream resumes as an empty end_stream frame.
    if (!state.headersForwarded) {
      this.forwardHeaders(state, state.headerMap!, state.observedEnd && state.bufferedData === null);
    }
    if (!state.endForwarded && (state.bufferedData !== null || state.observedEnd)) {
      const d = state.bufferedData ?? EMPTY;
      state.bufferedData = null;
      this.forwardData(state, d, state.observedEnd);
    }
  }

  // ---- stream and timers -------------------------------------------------------------------------

  /** Filter::openStream: lazily opens the side stream; IgnoreError once processing is complete. */
  private openStream(): 'ok' | 'ignore' | 'error' {
    if (this.processingComplete) return 'ignore';
    if (!this.stream) {
      const r = this.clients.start(this.config.grpcService, {
        onMessage: (m) => this.onReceiveMessage(m),
        onError: (code, msg) => this.onGrpcError(code, msg),
        onClose: () => this.onGrpcClose(),
      });
      if ('code' in r) {
        this.onGrpcError(r.code, r.message);
        return this.sentImmediateResponse ? 'error' : 'ignore';
      }
      this.stream = r;
      this.stat('streams_started');
    }
    return 'ok';
  }

  /**
   * Filter::closeStreamMaybeGraceful: processing_complete_ = true, then closeStream (the graceful
   * variant is behind the off-by-default runtime guard ext_proc_graceful_grpc_close, facts §2.1).
   * With processing complete, later headers/data pass through and openStream() never opens a new
   * stream (IgnoreError).
   */
  private closeStreamMaybeGraceful(): void {
    this.processingComplete = true;
    this.closeStream();
  }

  /** Filter::closeStream → client close(): half-close then reset (server sees CANCELLED). */
  private closeStream(): void {
    if (this.stream) {
      this.stream.close();
      this.stream = null;
      this.stat('streams_closed');
    }
  }

  private send(req: ProcessingRequest): void {
    // Every caller opened the stream first; once processing is complete (close optimisation
    // included) nothing is sent (openStream → IgnoreError).
    if (!this.stream && this.openStream() !== 'ok') return;
    // ProcessingRequest.protocol_config: "only encoded in the first ProcessingRequest message",
    // not in observability mode (facts §2.1).
    if (!this.protocolConfigSent && !this.config.observabilityMode) {
      this.protocolConfigSent = true;
      // Proto3 defaults are not put on the wire, as Envoy's C++ serializer would not.
      const pc: ProcessingRequest['protocol_config'] = {};
      if (this.decoding.bodyMode !== 'NONE') pc.request_body_mode = this.decoding.bodyMode;
      if (this.encoding.bodyMode !== 'NONE') pc.response_body_mode = this.encoding.bodyMode;
      req.protocol_config = pc;
    }
    this.stream!.send(req);
    this.stat('stream_msgs_sent');
  }

  /** ProcessorState::onStartProcessorCall: (re)arms the per-message timer. */
  private startCall(state: ProcessorState, cs: CallbackState): void {
    state.callbackState = cs;
    state.newTimeoutReceived = false;
    if (this.config.observabilityMode) return; // no message timer in observability mode
    this.stopTimer(state);
    state.timer = setTimeout(() => this.onMessageTimeout(), this.config.messageTimeoutMs);
  }

  /** ProcessorState::onFinishProcessorCall. */
  private finishCall(state: ProcessorState, next: CallbackState = 'Idle'): void {
    this.stopTimer(state);
    state.callbackState = next;
    state.newTimeoutReceived = false;
  }

  private stopTimer(state: ProcessorState): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = undefined;
  }

  // ---- building requests ---------------------------------------------------------------------

  /** Filter::addAttributes: once per direction, only if that direction has expressions. */
  private addAttributes(state: ProcessorState, req: ProcessingRequest): void {
    const exprs = state.dir === 'request' ? this.config.requestAttributes : this.config.responseAttributes;
    if (state.sentAttributes || exprs.length === 0) return;
    const ctx = {
      requestHeaders: this.cb.requestHeaders(),
      responseHeaders: this.encoding.headerMap,
      routeName: this.cb.route()?.name,
      clusterName: this.cb.streamInfo.upstreamCluster,
      upstreamHostMetadata: this.cb.upstreamHost?.metadata,
    };
    const fields: JsonObject = {};
    for (const e of exprs) {
      const v = e.evaluate(ctx);
      if (v !== undefined) fields[e.text] = v;
    }
    state.sentAttributes = true;
    req.attributes = { [EXT_PROC_FILTER_NAME]: jsonToStruct(fields) };
  }

  /** Filter::addDynamicMetadata: forwarding namespaces of the stream's dynamic metadata, every message. */
  private addDynamicMetadata(req: ProcessingRequest): void {
    const fm: Record<string, PbStruct> = {};
    for (const ns of this.config.forwardingNamespaces) {
      const v = this.cb.streamInfo.dynamicMetadata[ns];
      if (v) fm[ns] = jsonToStruct(v);
    }
    req.metadata_context = { filter_metadata: fm };
  }

  /** Filter::buildHeaderRequest (MutationUtils::headersToProto: lower-case keys, raw_value). */
  private buildHeadersRequest(state: ProcessorState, headers: HeaderMap, eos: boolean, observability: boolean): ProcessingRequest {
    const req: ProcessingRequest = {};
    if (observability) req.observability_mode = true;
    this.addAttributes(state, req);
    this.addDynamicMetadata(req);
    const h: PbHttpHeaders = { headers: { headers: headers.toProto() } };
    if (eos) h.end_of_stream = true;
    if (state.dir === 'request') req.request_headers = h;
    else req.response_headers = h;
    return req;
  }

  /** Filter::setupBodyChunk. */
  private setupBodyChunk(state: ProcessorState, data: Buffer, eos: boolean): ProcessingRequest {
    const req: ProcessingRequest = {};
    this.addAttributes(state, req);
    this.addDynamicMetadata(req);
    // Empty bytes / false are proto3 defaults: left off the wire, as Envoy's serializer does.
    const b: PbHttpBody = {};
    if (data.length > 0) b.body = data;
    if (eos) b.end_of_stream = true;
    if (state.dir === 'request') req.request_body = b;
    else req.response_body = b;
    return req;
  }

  private sendBodyChunk(state: ProcessorState, data: Buffer, cs: CallbackState, eos: boolean): void {
    const req = this.setupBodyChunk(state, data, eos);
    this.startCall(state, cs);
    this.send(req);
  }

  // ---- data path ---------------------------------------------------------------------------------

  /** Filter::onHeaders + decodeHeaders/encodeHeaders. */
  private onHeaders(state: ProcessorState, headers: HeaderMap, eos: boolean): void {
    state.headerMap = headers;
    if (eos) state.observedEnd = true;
    // sendHeadersInObservabilityMode: send and go on.
    if (state.sendHeaders && this.config.observabilityMode) {
      const o = this.openStream();
      if (o === 'error') return;
      if (o === 'ok') this.send(this.buildHeadersRequest(state, headers, eos, true));
      this.forwardHeaders(state, headers, eos);
      return;
    }
    if (eos) state.completeBodyAvailable = true;
    let hold = false;
    if (state.sendHeaders && !this.processingComplete) {
      switch (this.openStream()) {
        case 'error':
          hold = true; // a local reply was sent; StopIteration
          break;
        case 'ignore':
          break;
        case 'ok': {
          state.headers = headers;
          state.noBody = eos;
          const req = this.buildHeadersRequest(state, headers, eos, false);
          this.startCall(state, 'HeadersCallback');
          this.send(req);
          state.paused = true;
          hold = true;
        }
      }
    }
    // After sending (so the server saw it), content-length goes for STREAMED etc. (facts §2.11).
    if (!this.processingComplete && state.shouldRemoveContentLength()) headers.remove('content-length');
    // Filter::encodeHeaders: "If there is no external processing configured in the encoding path,
    // closing the gRPC stream if it is still open." → closeStreamMaybeGraceful() (which also sets
    // processing_complete_). E.g. a request-only filter whose server asked for the request body
    // (BUFFERED bodies never trigger the last-response close) has its stream ended when the
    // response headers arrive, not when the response body ends.
    if (state.dir === 'response' && state.noExternalProcess()) this.closeStreamMaybeGraceful();
    if (!hold) this.forwardHeaders(state, headers, eos);
  }

  /** Appends to the filter manager's buffer; over the limit → 413 / 500 (facts §2.4). */
  private bufferChecked(state: ProcessorState, data: Buffer): boolean {
    state.appendBuffered(data);
    if (state.bufferedData!.length > this.cb.bufferLimit) {
      this.cb.bufferOverLimit(state.dir);
      return false;
    }
    return true;
  }

  /** Filter::onData (ext_proc.cc). */
  private onData(state: ProcessorState, data: Buffer, eos: boolean): void {
    if (this.config.observabilityMode) {
      // sendDataInObservabilityMode: only STREAMED bodies are sent; data always continues.
      if (eos) state.observedEnd = true;
      if (state.bodyMode === 'STREAMED') {
        const o = this.openStream();
        if (o === 'error') return;
        if (o === 'ok') {
          const req = this.setupBodyChunk(state, data, eos);
          req.observability_mode = true;
          this.send(req);
        }
      }
      this.forwardData(state, data, eos);
      return;
    }
    if (eos) {
      state.completeBodyAvailable = true;
      state.observedEnd = true;
    }
    if (state.bodyReplaced) {
      // "Clearing body chunk because CONTINUE_AND_REPLACE was returned"
      if (eos) this.forwardData(state, EMPTY, true);
      return;
    }
    if (this.processingComplete) {
      // FilterDataStatus::Continue. If this filter still holds the stream (e.g. the close
      // optimisation ended processing while a BUFFERED body was being held), the filter manager
      // resumes with the held headers and buffered data plus this chunk (commonContinue).
      if (state.paused) {
        state.appendBuffered(data);
        this.continueIfNecessary(state);
      } else {
        this.forwardData(state, data, eos);
      }
      return;
    }
    if (state.callbackState === 'HeadersCallback') {
      // "Header processing still in progress -- holding body data". ext_proc.cc onData: "For
      // BUFFERED mode, return StopIterationAndBuffer so when buffered data reaches the
      // per-connection-limit, Envoy will a send a 413: payload-too-large local reply. For
      // non-BUFFERED mode, return StopIterationAndWatermark" (watermark only, no local reply).
      // So a BUFFERED body over the limit fails while the headers answer is still pending:
      // 413 on the request path, 500 on the response path (facts §2.4).
      state.paused = true;
      if (state.bodyMode === 'BUFFERED') {
        this.bufferChecked(state, data);
        return;
      }
      state.appendBuffered(data);
      return;
    }
    switch (state.bodyMode) {
      case 'BUFFERED': {
        if (eos) {
          const o = this.openStream();
          if (o === 'error') return;
          if (o === 'ignore') return this.forwardData(state, data, eos);
          if (!this.bufferChecked(state, data)) return;
          this.sendBodyChunk(state, state.bufferedData!, 'BufferedBodyCallback', true);
          state.paused = true; // StopIterationNoBuffer
          return;
        }
        if (!this.bufferChecked(state, data)) return; // StopIterationAndBuffer
        state.paused = true;
        return;
      }
      case 'STREAMED': {
        const o = this.openStream();
        if (o === 'error') return;
        if (o === 'ignore') return this.forwardData(state, data, eos);
        // Pipelined: each chunk is sent at once and queued; its (possibly mutated) bytes are
        // injected when its response comes back, in order.
        this.sendBodyChunk(state, data, 'StreamedBodyCallback', eos);
        state.chunkQueue.push({ data: Buffer.from(data), endStream: eos });
        if (eos) state.paused = true;
        return;
      }
      case 'BUFFERED_PARTIAL': {
        if (state.partialBodyProcessed) return this.forwardData(state, data, eos);
        state.chunkQueue.push({ data: Buffer.from(data), endStream: eos });
        state.paused = true;
        if (state.callbackState === 'BufferedPartialBodyCallback') return; // data arriving during the call
        if (eos || state.queueBytes() > this.cb.bufferLimit) {
          const o = this.openStream();
          if (o === 'error') return;
          if (o === 'ignore') return;
          const all = state.consolidate();
          this.sendBodyChunk(state, all.data, 'BufferedPartialBodyCallback', all.endStream);
        }
        return;
      }
      default:
        this.forwardData(state, data, eos);
    }
  }

  // ---- responses from the processor ----------------------------------------------------------

  private inHeaderProcessState(): boolean {
    return this.decoding.callbackState === 'HeadersCallback' || this.encoding.callbackState === 'HeadersCallback';
  }

  /**
   * effectiveModeOverride (ext_proc.cc): DEFAULT header/trailer modes keep the configured mode;
   * body modes are always taken literally (facts §2.3).
   */
  private effectiveModeOverride(target: PbProcessingMode): ProcessingMode {
    const m: ProcessingMode = { ...this.config.processingMode };
    const hdr = (v: string | number | undefined) => enumName(v, HEADER_SEND_MODES) as ProcessingMode['request_header_mode'] | undefined;
    const body = (v: string | number | undefined) => (enumName(v, BODY_SEND_MODES) ?? 'NONE') as BodySendMode;
    for (const k of ['request_header_mode', 'response_header_mode', 'request_trailer_mode', 'response_trailer_mode'] as const) {
      const v = hdr(target[k]);
      if (v && v !== 'DEFAULT') m[k] = v;
    }
    m.request_body_mode = body(target.request_body_mode);
    m.response_body_mode = body(target.response_body_mode);
    return m;
  }

  /** Filter::onReceiveMessage. */
  private onReceiveMessage(resp: ProcessingResponse): void {
    if (this.config.observabilityMode) return; // responses are ignored in observability mode
    if (this.processingComplete) {
      this.stat('stream_msgs_ignored'); // "Ignoring stream message received after processing complete"
      return;
    }
    if (resp.override_message_timeout) {
      // "the data plane ignores other fields in the response"
      this.onNewTimeout(resp.override_message_timeout);
      return;
    }
    if (this.config.allowModeOverride && this.inHeaderProcessState() && resp.mode_override) {
      const m = this.effectiveModeOverride(resp.mode_override);
      const allowed =
        this.config.allowedOverrideModes.length === 0 ||
        this.config.allowedOverrideModes.some(
          (o) =>
            // request_header_mode is ignored in the comparison
            o.request_body_mode === m.request_body_mode &&
            o.request_trailer_mode === m.request_trailer_mode &&
            o.response_header_mode === m.response_header_mode &&
            o.response_body_mode === m.response_body_mode &&
            o.response_trailer_mode === m.response_trailer_mode,
        );
      // Only an override Envoy would apply can hit the unimplemented modes: one outside
      // allowed_override_modes is ignored ("Processing mode overridden by server is disallowed").
      const unimplemented = (b: BodySendMode) => b === 'FULL_DUPLEX_STREAMED' || b === 'GRPC';
      if (allowed && (unimplemented(m.request_body_mode) || unimplemented(m.response_body_mode))) {
        const msg = `stand-in: mode_override to ${m.request_body_mode}/${m.response_body_mode} is not implemented`;
        this.cb.stats.errors.push(msg);
        this.handleErrorResponse(msg);
        return;
      }
      if (allowed) {
        this.decoding.setProcessingMode(m);
        this.encoding.setProcessingMode(m);
      } else {
        this.stat('mode_override_disallowed');
      }
    }

    let status: Status = OK;
    let isLastBody = false;
    switch (resp.response) {
      case 'request_headers':
        this.setDynamicMetadata(resp);
        status = this.handleHeadersResponse(this.decoding, resp.request_headers?.response);
        break;
      case 'response_headers':
        this.setDynamicMetadata(resp);
        status = this.handleHeadersResponse(this.encoding, resp.response_headers?.response);
        break;
      case 'request_body':
        isLastBody = this.isLastBodyResponse(this.decoding);
        this.setDynamicMetadata(resp);
        status = this.handleBodyResponse(this.decoding, resp.request_body?.response);
        break;
      case 'response_body':
        isLastBody = this.isLastBodyResponse(this.encoding);
        this.setDynamicMetadata(resp);
        status = this.handleBodyResponse(this.encoding, resp.response_body?.response);
        break;
      case 'request_trailers':
      case 'response_trailers':
        // Trailers are never sent by the stand-in, so a trailers response is always out of order
        // (handleTrailersResponse: callback_state_ != TrailersCallback → spurious).
        status = spurious('spurious message');
        break;
      case 'immediate_response':
        if (this.config.disableImmediateResponse) {
          status = spurious('unhandled immediate response due to config disabled it');
        } else {
          this.setDynamicMetadata(resp);
          this.processingComplete = true;
          this.finishCall(this.decoding);
          this.finishCall(this.encoding);
          this.closeStream();
          this.stat('immediate_responses');
          this.sendImmediateResponse(resp.immediate_response ?? {});
        }
        break;
      default:
        // streamed_immediate_response (FULL_DUPLEX only) or no oneof member: "unhandled message".
        status = spurious('unhandled message');
    }

    if (status.ok) {
      this.stat('stream_msgs_received');
    } else if (status.spurious) {
      this.stat('spurious_msgs_received');
      if (this.config.failureModeAllow) {
        // Fail open: ignore this processor for the rest of the request.
        this.stat('failure_mode_allowed');
        this.closeStream();
        this.clearAsyncState();
        this.processingComplete = true;
      } else {
        // ext_proc_fail_close_spurious_resp (default true): local reply with status_on_error.
        this.handleErrorResponse(status.message);
      }
    } else {
      this.stat('stream_msgs_received');
      this.handleErrorResponse(status.message);
    }
    this.closeGrpcStreamIfLastRespReceived(resp, isLastBody);
  }

  /** Filter::setDynamicMetadata: only receiving_namespaces.untyped are merged into StreamInfo. */
  private setDynamicMetadata(resp: ProcessingResponse): void {
    if (this.config.receivingNamespaces.length === 0 || !resp.dynamic_metadata) {
      if (resp.dynamic_metadata) this.stat('dynamic_metadata_dropped');
      return;
    }
    for (const [ns, v] of Object.entries(resp.dynamic_metadata.fields ?? {})) {
      if (this.config.receivingNamespaces.includes(ns)) {
        this.cb.streamInfo.setDynamicMetadata(ns, structToJson(v.structValue));
      } else {
        this.stat('dynamic_metadata_dropped');
      }
    }
  }

  /** DecodingProcessorState::clearRouteCache (facts §2.7). */
  private clearRouteCache(state: ProcessorState, common: PbCommonResponse): void {
    const want = common.clear_route_cache === true;
    if (state.dir === 'response') {
      if (want) this.stat('clear_route_cache_ignored'); // encoding direction never clears
      return;
    }
    if (this.cb.isUpstream) {
      if (want) this.stat('clear_route_cache_upstream_ignored');
      return;
    }
    if (!common.header_mutation) {
      if (want) this.stat('clear_route_cache_ignored');
      return;
    }
    switch (this.config.routeCacheAction) {
      case 'DEFAULT':
        if (want) this.cb.clearRouteCache();
        break;
      case 'CLEAR':
        this.cb.clearRouteCache();
        break;
      case 'RETAIN':
        if (want) this.stat('clear_route_cache_disabled');
        break;
    }
  }

  private processHeaderMutation(state: ProcessorState, common: PbCommonResponse): Status {
    const r = applyHeaderMutations(common.header_mutation!, state.headers!, this.checker, {
      replacingMessage: enumName(common.status, ['CONTINUE', 'CONTINUE_AND_REPLACE']) === 'CONTINUE_AND_REPLACE',
      removeContentLength: state.shouldRemoveContentLength(),
      onRejected: () => this.stat('rejected_header_mutations'),
    });
    return r.ok ? OK : failure(r.message);
  }

  /** ProcessorState::handleHeadersResponse (processor_state.cc). */
  private handleHeadersResponse(state: ProcessorState, common: PbCommonResponse = {}): Status {
    if (state.callbackState !== 'HeadersCallback') return spurious('spurious message');
    if (common.header_mutation) {
      const s = this.processHeaderMutation(state, common);
      if (!s.ok) return s;
    }
    this.clearRouteCache(state, common);
    this.finishCall(state);
    if (enumName(common.status, ['CONTINUE', 'CONTINUE_AND_REPLACE']) === 'CONTINUE_AND_REPLACE') {
      if (common.body_mutation) {
        // "Remove the content length here because in this case external processor probably won't
        // properly set the content-length header to match the length of the new body".
        state.headers!.remove('content-length');
        state.bodyReplaced = true;
        state.bufferedData = applyBodyMutation(common.body_mutation, state.bufferedData ?? EMPTY);
      }
      // Nothing more of this message goes to the processor.
      state.chunkQueue = [];
      state.bodyMode = 'NONE';
      state.sendTrailers = false;
    } else if (state.noBody) {
      // no body in the first place
    } else if (state.completeBodyAvailable && state.bodyMode !== 'NONE') {
      if (state.bufferedData !== null) {
        // The whole body arrived while waiting: one message, handled with buffered semantics
        // whatever the body mode (facts §2.1).
        this.sendBodyChunk(state, state.bufferedData, 'BufferedBodyCallback', !state.trailersAvailable);
        return OK;
      }
    } else if (state.bodyMode === 'BUFFERED') {
      // Headers stay held so the body response can still mutate them.
      return OK;
    } else if (state.bodyMode === 'STREAMED') {
      this.sendBufferedDataInStreamedMode(state);
      return OK;
    } else if (state.bodyMode === 'BUFFERED_PARTIAL') {
      if (state.bufferedData && state.bufferedData.length > 0) {
        state.chunkQueue.push({ data: state.bufferedData, endStream: false });
        state.bufferedData = null;
      }
      if (state.queueBytes() > this.cb.bufferLimit) {
        const all = state.consolidate();
        this.sendBodyChunk(state, all.data, 'BufferedPartialBodyCallback', false);
      }
      return OK;
    }
    state.headers = null;
    this.continueIfNecessary(state);
    return OK;
  }

  /**
   * ProcessorState::sendBufferedDataInStreamedMode: chunks that arrived before the headers
   * response go out coalesced into one message, then headers continue.
   */
  private sendBufferedDataInStreamedMode(state: ProcessorState): void {
    if (state.bufferedData && state.bufferedData.length > 0) {
      const chunk = state.bufferedData;
      state.bufferedData = null;
      this.sendBodyChunk(state, chunk, 'StreamedBodyCallback', false);
      state.chunkQueue.push({ data: chunk, endStream: false });
    }
    state.headers = null;
    this.continueIfNecessary(state);
  }

  private isLastBodyResponse(state: ProcessorState): boolean {
    // isLastBodyResponse (ext_proc.cc): only STREAMED is checked; BUFFERED* return false.
    return state.bodyMode === 'STREAMED' && state.chunkQueue.length > 0 && state.chunkQueue[0]!.endStream;
  }

  /** ProcessorState::handleBodyResponse (processor_state.cc). */
  private handleBodyResponse(state: ProcessorState, common: PbCommonResponse = {}): Status {
    const cs = state.callbackState;
    if (cs !== 'BufferedBodyCallback' && cs !== 'StreamedBodyCallback' && cs !== 'BufferedPartialBodyCallback') {
      return spurious('spurious message');
    }
    // streamed_response is only valid with FULL_DUPLEX_STREAMED (facts §2.5).
    if (common.body_mutation?.mutation === 'streamed_response') return spurious('spurious message');
    let shouldContinue = false;
    if (cs === 'BufferedBodyCallback') {
      if (common.header_mutation && state.headers) {
        const s = this.processHeaderMutation(state, common);
        if (!s.ok) return s;
      }
      if (common.body_mutation) {
        const cl = state.headers?.get('content-length');
        if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) !== bodyMutationLength(common.body_mutation)) {
          return failure('mismatch between content length and the length of the mutated body');
        }
        state.bufferedData = applyBodyMutation(common.body_mutation, state.bufferedData ?? EMPTY);
      }
      this.finishCall(state);
      shouldContinue = true;
    } else if (cs === 'StreamedBodyCallback') {
      // Header mutations are ignored here (only applied with BUFFERED/BUFFERED_PARTIAL).
      const chunk = state.chunkQueue.shift();
      if (!chunk) return spurious('spurious message');
      const data = common.body_mutation ? applyBodyMutation(common.body_mutation, chunk.data) : chunk.data;
      shouldContinue = chunk.endStream;
      if (data.length > 0) this.forwardData(state, data, chunk.endStream);
      if (state.chunkQueue.length === 0) this.finishCall(state);
      else this.finishCall(state, 'StreamedBodyCallback');
    } else {
      const chunk = state.chunkQueue.shift();
      if (!chunk) return spurious('spurious message');
      if (common.header_mutation && state.headers) {
        const s = this.processHeaderMutation(state, common);
        if (!s.ok) return s;
      }
      const data = common.body_mutation ? applyBodyMutation(common.body_mutation, chunk.data) : chunk.data;
      if (data.length > 0) this.forwardData(state, data, chunk.endStream);
      shouldContinue = true;
      this.finishCall(state);
      state.partialBodyProcessed = true;
      if (state.chunkQueue.length > 0) {
        // "If anything else is left on the queue, inject it too"
        const rest = state.consolidate();
        state.chunkQueue = [];
        this.forwardData(state, rest.data, rest.endStream);
      }
    }
    this.clearRouteCache(state, common);
    state.headers = null;
    if (shouldContinue) this.continueIfNecessary(state);
    return OK;
  }

  /** Filter::onNewTimeout: restart the running timer once, within [1 ms, max_message_timeout]. */
  private onNewTimeout(d: { seconds?: string | number; nanos?: number }): void {
    const ms = Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
    if (!(ms >= 1 && ms <= this.config.maxMessageTimeoutMs)) {
      this.stat('override_message_timeout_ignored');
      return;
    }
    let restarted = false;
    for (const s of [this.decoding, this.encoding]) {
      if (s.timer && !s.newTimeoutReceived) {
        clearTimeout(s.timer);
        s.timer = setTimeout(() => this.onMessageTimeout(), ms);
        s.newTimeoutReceived = true;
        restarted = true;
      }
    }
    this.stat(restarted ? 'override_message_timeout_received' : 'override_message_timeout_ignored');
  }

  /** Filter::onMessageTimeout: 504 (hard-coded GatewayTimeout), or fail open. */
  private onMessageTimeout(): void {
    this.stat('message_timeouts');
    this.processingComplete = true;
    this.closeStream();
    if (this.config.failureModeAllow) {
      this.stat('failure_mode_allowed');
      this.clearAsyncState();
      return;
    }
    this.finishCall(this.decoding);
    this.finishCall(this.encoding);
    this.sendImmediateResponse({ status: { code: 504 }, details: 'ext_proc_error_per-message_timeout_exceeded' });
  }

  /** ProcessorState::clearAsyncState on both directions: pending data flows on unprocessed. */
  private clearAsyncState(): void {
    for (const s of [this.decoding, this.encoding]) {
      this.finishCall(s);
      if (s.chunkQueue.length > 0) {
        const all = s.consolidate();
        s.chunkQueue = [];
        this.forwardData(s, all.data, all.endStream);
      }
      this.continueIfNecessary(s);
    }
  }

  /** Filter::onGrpcError: fail open, or status_on_error with details ext_proc_error_gRPC_error_<code>{msg}. */
  private onGrpcError(code: number, message: string): void {
    this.stat('streams_failed');
    if (this.processingComplete) return;
    if (this.config.failureModeAllow) {
      this.stat('failure_mode_allowed');
      this.onGrpcClose();
      return;
    }
    this.processingComplete = true;
    this.finishCall(this.decoding);
    this.finishCall(this.encoding);
    this.closeStream();
    this.sendImmediateResponse({
      status: { code: this.config.statusOnError },
      details: `ext_proc_error_gRPC_error_${code}{${message}}`,
    });
  }

  /** Filter::onGrpcClose: the server ended the stream with OK → continue without ext_proc. */
  private onGrpcClose(): void {
    if (this.processingComplete) return;
    this.processingComplete = true;
    this.stat('streams_closed_by_server');
    this.closeStream();
    this.clearAsyncState();
  }

  /** Filter::handleErrorResponse: local reply with status_on_error. */
  private handleErrorResponse(message: string): void {
    this.processingComplete = true;
    this.finishCall(this.decoding);
    this.finishCall(this.encoding);
    this.closeStream();
    this.sendImmediateResponse({ status: { code: this.config.statusOnError }, details: message });
  }

  /**
   * Filter::sendImmediateResponse: status (default 200, < 200 → 200), body, headers applied with the
   * filter's mutation rules (facts §2.8), details with whitespace replaced. A local reply: it runs
   * back through the encoder filters (or resets the stream once the response had started).
   */
  private sendImmediateResponse(ir: PbImmediateResponse): void {
    let code = ir.status ? statusCodeNumber(ir.status.code) ?? 0 : 200;
    if (code < 200) code = 200;
    const mutation = ir.headers;
    const modify = mutation
      ? (h: HeaderMap) => {
          // Failures are logged by Envoy and otherwise ignored.
          applyHeaderMutations(mutation, h, this.checker, {
            replacingMessage: false,
            removeContentLength: false,
            onRejected: () => this.stat('rejected_header_mutations'),
          });
        }
      : undefined;
    this.sentImmediateResponse = true;
    const details = (ir.details ?? '').replace(/\s/g, '_');
    this.cb.sendLocalReply(code, toBuffer(ir.body), modify, details);
  }

  /** Filter::closeGrpcStreamIfLastRespReceived (runtime guard ext_proc_stream_close_optimization, default on). */
  private closeGrpcStreamIfLastRespReceived(resp: ProcessingResponse, isLastBody: boolean): void {
    if (!this.stream) return;
    const d = this.decoding;
    const e = this.encoding;
    let last = false;
    switch (resp.response) {
      case 'request_headers':
        last = (d.noBody || (d.bodyMode === 'NONE' && !d.sendTrailers)) && e.noExternalProcess();
        break;
      case 'request_body':
        last = isLastBody && e.noExternalProcess();
        break;
      case 'response_headers':
        last = e.noBody || (e.bodyMode === 'NONE' && !e.sendTrailers);
        break;
      case 'response_body':
        last = isLastBody;
        break;
      default:
        break;
    }
    if (last) this.closeStreamMaybeGraceful();
  }
}
