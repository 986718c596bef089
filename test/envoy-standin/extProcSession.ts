/**
 * The ext_proc filter's side stream and failure handling (ext_proc.cc): opening, sending (with
 * protocol_config), closing (incl. the stream close optimisation), message timeouts and
 * override_message_timeout, gRPC errors and closes, fail-open, and local replies
 * (status_on_error, immediate_response). Shared by ExtProcFilter and the response handlers.
 */
import { upstreamImmediateResponseHonoured } from './version.js';
import type { ExtProcConfig } from './config/index.js';
import type { ExtProcClients, SideStream } from './extProcClient.js';
import { setupBodyChunk } from './extProcRequests.js';
import { ProcessorState, type CallbackState } from './extProcState.js';
import type { FilterCallbacks } from './filterManager.js';
import type { HeaderMap } from './headers.js';
import { MutationChecker, applyHeaderMutations } from './mutationRules.js';
import { statusCodeNumber, toBuffer, type PbImmediateResponse, type ProcessingRequest, type ProcessingResponse } from './proto.js';

export class ExtProcSession {
  readonly decoding: ProcessorState;
  readonly encoding: ProcessorState;
  readonly checker: MutationChecker;
  processingComplete = false;
  private stream: SideStream | null = null;
  private sentImmediateResponse = false;
  private protocolConfigSent = false;
  private readonly statPrefix: string;

  constructor(
    readonly cb: FilterCallbacks,
    readonly config: ExtProcConfig,
    private readonly clients: ExtProcClients,
    /** Filter::onReceiveMessage. */
    private readonly onMessage: (m: ProcessingResponse) => void,
  ) {
    this.decoding = new ProcessorState('request', cb, config, () => this.onMessageTimeout());
    this.encoding = new ProcessorState('response', cb, config, () => this.onMessageTimeout());
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

  stat(name: string): void {
    this.cb.stats.inc(this.statPrefix + name);
  }

  /** Filter::onDestroy: processing ends; the stream is closed (deferred in observability mode). */
  onDestroy(): void {
    this.processingComplete = true;
    this.decoding.stopTimer();
    this.encoding.stopTimer();
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

  /**
   * Filter::onLocalReply (ext_proc.cc), runtime guard envoy.reloadable_features.skip_ext_proc_on_local_reply
   * (default true since Envoy 1.34.0, the CVE-2025-30157 fix; the 1.34.0 release note: "local
   * replies were incorrectly sent to the extProc server"): a local reply — Envoy's own 503/504/413
   * or any filter's, this one's immediate_response included — ends external processing. The
   * server has seen the request phases only; its stream is closed (half-close + reset) and no
   * response phase follows. ext_proc_integration_test.cc checks exactly this (it expects
   * response_headers only when the guard is off).
   */
  onLocalReply(): void {
    if (this.processingComplete && !this.stream) return;
    this.processingComplete = true;
    this.decoding.finishCall();
    this.encoding.finishCall();
    // Observability mode keeps its deferred close (onDestroy); nothing more is sent either way.
    if (!this.config.observabilityMode) this.closeStream();
  }

  // ---- stream ------------------------------------------------------------------------------------

  /** Filter::openStream: lazily opens the side stream; IgnoreError once processing is complete. */
  openStream(): 'ok' | 'ignore' | 'error' {
    if (this.processingComplete) return 'ignore';
    if (!this.stream) {
      const r = this.clients.start(this.config.grpcService, {
        onMessage: (m) => this.onMessage(m),
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
  closeStreamMaybeGraceful(): void {
    this.processingComplete = true;
    this.closeStream();
  }

  /** Filter::closeStream → client close(): half-close then reset (server sees CANCELLED). */
  closeStream(): void {
    if (this.stream) {
      this.stream.close();
      this.stream = null;
      this.stat('streams_closed');
    }
  }

  send(req: ProcessingRequest): void {
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

  sendBodyChunk(state: ProcessorState, data: Buffer, cs: CallbackState, eos: boolean): void {
    const req = setupBodyChunk(this, state, data, eos);
    state.startCall(cs);
    this.send(req);
  }

  /** Filter::closeGrpcStreamIfLastRespReceived (runtime guard ext_proc_stream_close_optimization, default on). */
  closeGrpcStreamIfLastRespReceived(resp: ProcessingResponse, isLastBody: boolean): void {
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

  // ---- timers and failures -----------------------------------------------------------------------

  /** Filter::onNewTimeout: restart the running timer once, within [1 ms, max_message_timeout]. */
  onNewTimeout(d: { seconds?: string | number; nanos?: number }): void {
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
    this.decoding.finishCall();
    this.encoding.finishCall();
    this.sendImmediateResponse({ status: { code: 504 }, details: 'ext_proc_error_per-message_timeout_exceeded' });
  }

  /** ProcessorState::clearAsyncState on both directions: pending data flows on unprocessed. */
  clearAsyncState(): void {
    for (const s of [this.decoding, this.encoding]) {
      s.finishCall();
      if (s.chunkQueue.length > 0) {
        const all = s.consolidate();
        s.chunkQueue = [];
        s.forwardData(all.data, all.endStream);
      }
      s.continueIfNecessary();
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
    this.decoding.finishCall();
    this.encoding.finishCall();
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
  handleErrorResponse(message: string): void {
    this.processingComplete = true;
    this.decoding.finishCall();
    this.encoding.finishCall();
    this.closeStream();
    this.sendImmediateResponse({ status: { code: this.config.statusOnError }, details: message });
  }

  /**
   * Filter::sendImmediateResponse: status (default 200, < 200 → 200), body, headers applied with the
   * filter's mutation rules (facts §2.8), details with whitespace replaced. A local reply: it runs
   * back through the encoder filters (or resets the stream once the response had started).
   */
  sendImmediateResponse(ir: PbImmediateResponse): void {
    if (this.cb.isUpstream && !upstreamImmediateResponseHonoured(this.cb.envoyVersion)) {
      // Envoy 1.36: `if (config_->isUpstream()) { stats_.send_immediate_resp_upstream_ignored_.inc();
      // return; }` — and nothing continues the held headers: the attempt stalls until a per-try
      // (idle) timeout or the route timeout resets it (version.ts).
      this.stat('send_immediate_resp_upstream_ignored');
      this.sentImmediateResponse = true;
      return;
    }
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
}
