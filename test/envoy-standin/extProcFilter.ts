/**
 * Envoy's ext_proc HTTP filter (source/extensions/filters/http/ext_proc/ext_proc.cc and
 * processor_state.cc), as a stand-in filter for both the HCM chain and an upstream (per-attempt)
 * chain. Behaviour and citations are per method; facts § refers to
 * ../../../shared/docs/envoy-ext-proc-facts.md.
 *
 * This class is the orchestrator (filter interface, data path, dispatch of processor messages);
 * per-direction state is in extProcState.ts, request building in extProcRequests.ts, response
 * handling in extProcResponses.ts, and the side stream, timers and failures in extProcSession.ts.
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
import type { BodySendMode, ExtProcConfig } from './config/index.js';
import type { ExtProcClients } from './extProcClient.js';
import { buildHeadersRequest, setupBodyChunk } from './extProcRequests.js';
import {
  OK,
  effectiveModeOverride,
  handleBodyResponse,
  handleHeadersResponse,
  isLastBodyResponse,
  modeOverrideAllowed,
  setDynamicMetadata,
  spurious,
  type Status,
} from './extProcResponses.js';
import { ExtProcSession } from './extProcSession.js';
import { EMPTY, type ProcessorState } from './extProcState.js';
import type { FilterCallbacks, StreamFilter } from './filterManager.js';
import type { HeaderMap } from './headers.js';
import type { ProcessingResponse } from './proto.js';

export { EXT_PROC_FILTER_NAME } from './extProcRequests.js';

export class ExtProcFilter implements StreamFilter {
  private readonly s: ExtProcSession;
  private readonly decoding: ProcessorState;
  private readonly encoding: ProcessorState;

  constructor(
    private readonly cb: FilterCallbacks,
    private readonly config: ExtProcConfig,
    clients: ExtProcClients,
  ) {
    this.s = new ExtProcSession(cb, config, clients, (m) => this.onReceiveMessage(m));
    this.decoding = this.s.decoding;
    this.encoding = this.s.encoding;
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
    this.s.onDestroy();
  }

  /** Filter::onLocalReply: local replies skip ext_proc (extProcSession.ts onLocalReply). */
  onLocalReply(): void {
    this.s.onLocalReply();
  }

  // ---- data path ---------------------------------------------------------------------------------

  /** Filter::onHeaders + decodeHeaders/encodeHeaders. */
  private onHeaders(state: ProcessorState, headers: HeaderMap, eos: boolean): void {
    state.headerMap = headers;
    if (eos) state.observedEnd = true;
    // sendHeadersInObservabilityMode: send and go on.
    if (state.sendHeaders && this.config.observabilityMode) {
      const o = this.s.openStream();
      if (o === 'error') return;
      if (o === 'ok') this.s.send(buildHeadersRequest(this.s, state, headers, eos, true));
      state.forwardHeaders(headers, eos);
      return;
    }
    if (eos) state.completeBodyAvailable = true;
    let hold = false;
    if (state.sendHeaders && !this.s.processingComplete) {
      switch (this.s.openStream()) {
        case 'error':
          hold = true; // a local reply was sent; StopIteration
          break;
        case 'ignore':
          break;
        case 'ok': {
          state.headers = headers;
          state.noBody = eos;
          const req = buildHeadersRequest(this.s, state, headers, eos, false);
          state.startCall('HeadersCallback');
          this.s.send(req);
          state.paused = true;
          hold = true;
        }
      }
    }
    // After sending (so the server saw it), content-length goes for STREAMED etc. (facts §2.11).
    if (!this.s.processingComplete && state.shouldRemoveContentLength()) headers.remove('content-length');
    // Filter::encodeHeaders: "If there is no external processing configured in the encoding path,
    // closing the gRPC stream if it is still open." → closeStreamMaybeGraceful() (which also sets
    // processing_complete_). E.g. a request-only filter whose server asked for the request body
    // (BUFFERED bodies never trigger the last-response close) has its stream ended when the
    // response headers arrive, not when the response body ends.
    if (state.dir === 'response' && state.noExternalProcess()) this.s.closeStreamMaybeGraceful();
    if (!hold) state.forwardHeaders(headers, eos);
  }

  /** Filter::onData (ext_proc.cc). */
  private onData(state: ProcessorState, data: Buffer, eos: boolean): void {
    if (this.config.observabilityMode) {
      // sendDataInObservabilityMode: only STREAMED bodies are sent; data always continues.
      if (eos) state.observedEnd = true;
      if (state.bodyMode === 'STREAMED') {
        const o = this.s.openStream();
        if (o === 'error') return;
        if (o === 'ok') {
          const req = setupBodyChunk(this.s, state, data, eos);
          req.observability_mode = true;
          this.s.send(req);
        }
      }
      state.forwardData(data, eos);
      return;
    }
    if (eos) {
      state.completeBodyAvailable = true;
      state.observedEnd = true;
    }
    if (state.bodyReplaced) {
      // "Clearing body chunk because CONTINUE_AND_REPLACE was returned"
      if (eos) state.forwardData(EMPTY, true);
      return;
    }
    if (this.s.processingComplete) {
      // FilterDataStatus::Continue. If this filter still holds the stream (e.g. the close
      // optimisation ended processing while a BUFFERED body was being held), the filter manager
      // resumes with the held headers and buffered data plus this chunk (commonContinue).
      if (state.paused) {
        state.appendBuffered(data);
        state.continueIfNecessary();
      } else {
        state.forwardData(data, eos);
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
        state.bufferChecked(data);
        return;
      }
      state.appendBuffered(data);
      return;
    }
    switch (state.bodyMode) {
      case 'BUFFERED': {
        if (eos) {
          const o = this.s.openStream();
          if (o === 'error') return;
          if (o === 'ignore') return state.forwardData(data, eos);
          if (!state.bufferChecked(data)) return;
          this.s.sendBodyChunk(state, state.bufferedData!, 'BufferedBodyCallback', true);
          state.paused = true; // StopIterationNoBuffer
          return;
        }
        if (!state.bufferChecked(data)) return; // StopIterationAndBuffer
        state.paused = true;
        return;
      }
      case 'STREAMED': {
        const o = this.s.openStream();
        if (o === 'error') return;
        if (o === 'ignore') return state.forwardData(data, eos);
        // Pipelined: each chunk is sent at once and queued; its (possibly mutated) bytes are
        // injected when its response comes back, in order.
        this.s.sendBodyChunk(state, data, 'StreamedBodyCallback', eos);
        state.chunkQueue.push({ data: Buffer.from(data), endStream: eos });
        if (eos) state.paused = true;
        return;
      }
      case 'BUFFERED_PARTIAL': {
        if (state.partialBodyProcessed) return state.forwardData(data, eos);
        state.chunkQueue.push({ data: Buffer.from(data), endStream: eos });
        state.paused = true;
        if (state.callbackState === 'BufferedPartialBodyCallback') return; // data arriving during the call
        if (eos || state.queueBytes() > this.cb.bufferLimit) {
          const o = this.s.openStream();
          if (o === 'error') return;
          if (o === 'ignore') return;
          const all = state.consolidate();
          this.s.sendBodyChunk(state, all.data, 'BufferedPartialBodyCallback', all.endStream);
        }
        return;
      }
      default:
        state.forwardData(data, eos);
    }
  }

  // ---- responses from the processor ----------------------------------------------------------

  private inHeaderProcessState(): boolean {
    return this.decoding.callbackState === 'HeadersCallback' || this.encoding.callbackState === 'HeadersCallback';
  }

  /** Filter::onReceiveMessage. */
  private onReceiveMessage(resp: ProcessingResponse): void {
    if (this.config.observabilityMode) return; // responses are ignored in observability mode
    if (this.s.processingComplete) {
      this.s.stat('stream_msgs_ignored'); // "Ignoring stream message received after processing complete"
      return;
    }
    if (resp.override_message_timeout) {
      // "the data plane ignores other fields in the response"
      this.s.onNewTimeout(resp.override_message_timeout);
      return;
    }
    if (this.config.allowModeOverride && this.inHeaderProcessState() && resp.mode_override) {
      const m = effectiveModeOverride(this.config, resp.mode_override);
      const allowed = modeOverrideAllowed(this.config, m);
      // Only an override Envoy would apply can hit the unimplemented modes: one outside
      // allowed_override_modes is ignored ("Processing mode overridden by server is disallowed").
      const unimplemented = (b: BodySendMode) => b === 'FULL_DUPLEX_STREAMED' || b === 'GRPC';
      if (allowed && (unimplemented(m.request_body_mode) || unimplemented(m.response_body_mode))) {
        const msg = `stand-in: mode_override to ${m.request_body_mode}/${m.response_body_mode} is not implemented`;
        this.cb.stats.errors.push(msg);
        this.s.handleErrorResponse(msg);
        return;
      }
      if (allowed) {
        this.decoding.setProcessingMode(m);
        this.encoding.setProcessingMode(m);
      } else {
        this.s.stat('mode_override_disallowed');
      }
    }

    let status: Status = OK;
    let isLastBody = false;
    switch (resp.response) {
      case 'request_headers':
        setDynamicMetadata(this.s, resp);
        status = handleHeadersResponse(this.s, this.decoding, resp.request_headers?.response);
        break;
      case 'response_headers':
        setDynamicMetadata(this.s, resp);
        status = handleHeadersResponse(this.s, this.encoding, resp.response_headers?.response);
        break;
      case 'request_body':
        isLastBody = isLastBodyResponse(this.decoding);
        setDynamicMetadata(this.s, resp);
        status = handleBodyResponse(this.s, this.decoding, resp.request_body?.response);
        break;
      case 'response_body':
        isLastBody = isLastBodyResponse(this.encoding);
        setDynamicMetadata(this.s, resp);
        status = handleBodyResponse(this.s, this.encoding, resp.response_body?.response);
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
          setDynamicMetadata(this.s, resp);
          this.s.processingComplete = true;
          this.decoding.finishCall();
          this.encoding.finishCall();
          this.s.closeStream();
          this.s.stat('immediate_responses');
          this.s.sendImmediateResponse(resp.immediate_response ?? {});
        }
        break;
      default:
        // streamed_immediate_response (FULL_DUPLEX only) or no oneof member: "unhandled message".
        status = spurious('unhandled message');
    }

    if (status.ok) {
      this.s.stat('stream_msgs_received');
    } else if (status.spurious) {
      this.s.stat('spurious_msgs_received');
      if (this.config.failureModeAllow) {
        // Fail open: ignore this processor for the rest of the request.
        this.s.stat('failure_mode_allowed');
        this.s.closeStream();
        this.s.clearAsyncState();
        this.s.processingComplete = true;
      } else {
        // ext_proc_fail_close_spurious_resp (default true): local reply with status_on_error.
        this.s.handleErrorResponse(status.message);
      }
    } else {
      this.s.stat('stream_msgs_received');
      this.s.handleErrorResponse(status.message);
    }
    this.s.closeGrpcStreamIfLastRespReceived(resp, isLastBody);
  }
}
