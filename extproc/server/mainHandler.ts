/**
 * @module server/mainHandler
 * The messages of a router or attempt stream: each request message is decoded into a pipeline
 * phase, the stages run, and exactly one ProcessingResponse of the matching kind answers it.
 */
import type { HeaderView } from '../pipeline/headers.js';
import { PhaseOutput } from '../pipeline/output.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { headersOf } from './decode.js';
import { describeDecision, encodeResponse } from './encode.js';
import { requestHeadersOverride, responseHeadersOverride, wantsResponseBody, type EffectiveModes } from './modes.js';
import type { Answer, ProcessStream, StreamHandler } from './processStream.js';
import type { PbHttpBody, PbHttpHeaders, PbProcessingMode, PbProcessingRequest, RequestKind } from './protocol.js';

const REQUEST_HEADERS = 1;
const REQUEST_BODY_DONE = 2;
const RESPONSE_HEADERS = 4;
const EMPTY = Buffer.alloc(0);

/** Handles the messages of one router or attempt stream. */
export class MainHandler implements StreamHandler {
  private readonly pipeline: Pipeline;
  private readonly modes: EffectiveModes = { requestBodyMode: 'NONE', responseBodyMode: 'NONE' };
  /** Request body chunks when Envoy sends the body STREAMED (allocated on first need). */
  private requestChunks: Buffer[] | undefined;
  private seen = 0;
  private first = true;
  private warnedOrder = false;
  /** The request-headers answer's mode override, decided before the stages ran. */
  private headersOverride: PbProcessingMode | undefined;
  /** The request body came STREAMED (in chunks): its answer may change nothing. */
  private bodyStreamed = false;
  /** The response ended with its headers (no body): no body mode to ask for. */
  private responseEnded = false;
  private responseModeDecided = false;
  private responseMode: PbProcessingMode | undefined;
  /** The kind of the message whose stages are still running (answered when they are done). */
  private pendingKind: RequestKind = 'request_headers';
  private encodePending: ((o: PhaseOutput) => Answer) | undefined;

  constructor(private readonly s: ProcessStream) {
    this.pipeline = s.pipeline;
  }

  handle(kind: RequestKind, msg: PbProcessingRequest): Answer | Promise<Answer> {
    if (this.first) this.readFirst(msg);
    switch (kind) {
      case 'request_headers':
        return this.onRequestHeaders(msg.request_headers);
      case 'request_body':
        return this.onRequestBody(msg.request_body);
      case 'response_headers':
        return this.onResponseHeaders(msg.response_headers);
      case 'response_body':
        return this.onResponseBody(msg.response_body);
      default:
        return this.s.deps.continueFor[kind];
    }
  }

  private readFirst(msg: PbProcessingRequest): void {
    this.first = false;
    const x = this.s.x;
    const pc = msg.protocol_config;
    if (pc) {
      x.protocol = {
        requestBodyMode: pc.request_body_mode ?? 'NONE',
        responseBodyMode: pc.response_body_mode ?? 'NONE',
        sendBodyWithoutWaitingForHeaderResponse: pc.send_body_without_waiting_for_header_response === true,
      };
    }
    this.modes.requestBodyMode = x.protocol.requestBodyMode;
    this.modes.responseBodyMode = x.protocol.responseBodyMode;
  }

  private outOfOrder(kind: RequestKind): Answer {
    if (!this.warnedOrder) {
      this.warnedOrder = true;
      this.s.x.log.warn('out-of-order ProcessingRequest; continuing unchanged', { kind });
    }
    return this.s.deps.continueFor[kind];
  }

  /**
   * Encodes the stages' decision for `kind`. Which mode override and which last adjustments an
   * answer gets are read from the handler's state (`modeOverride`, `adjust`), not passed as
   * closures: a function made per message is optimised again after every full GC (see
   * server/processStream).
   */
  private finishAnswer(kind: RequestKind, out: PhaseOutput | Promise<PhaseOutput>): Answer | Promise<Answer> {
    if (!(out instanceof Promise)) return this.encodeAnswer(kind, out);
    // Messages are answered one at a time (ProcessStream), so one pending kind is enough.
    this.pendingKind = kind;
    return out.then((this.encodePending ??= this.encodePendingAnswer.bind(this)));
  }

  private encodePendingAnswer(o: PhaseOutput): Answer {
    return this.encodeAnswer(this.pendingKind, o);
  }

  /**
   * The mode override of a `kind` answer. Request headers: decided before the stages ran. Response
   * headers: after them, since a handler of that phase may have called `x.wantResponseBody()`.
   */
  private modeOverride(kind: RequestKind): PbProcessingMode | undefined {
    if (kind === 'request_headers') return this.headersOverride;
    if (kind !== 'response_headers') return undefined;
    // Decided once: deciding records the new mode in `modes`.
    if (!this.responseModeDecided) {
      this.responseModeDecided = true;
      this.responseMode = this.responseEnded ? undefined : responseHeadersOverride(this.pipeline.needs, this.s.x, this.modes, this.s.role);
    }
    return this.responseMode;
  }

  /** Last changes to a `kind` answer that is not an immediate response. */
  private adjust(kind: RequestKind, o: PhaseOutput, mode: PbProcessingMode | undefined): void {
    switch (kind) {
      case 'request_headers':
        // A body replaced in a headers answer is sent as CONTINUE_AND_REPLACE, after which Envoy
        // drops content-length (facts §2.11); envoy.yaml's upstream header_mutation filter restores
        // it from this metadata key (the pattern of envoyproxy/ai-gateway).
        if (o.body) o.setMetadata('ai_gateway', 'content_length', String(o.body.length));
        return;
      case 'request_body':
        if (this.bodyStreamed && (o.body !== undefined || o.setHeaders.size > 0 || o.removeHeaders.size > 0)) {
          // Envoy ignores header mutations on STREAMED body answers, and a replacement of the last
          // chunk would corrupt a body whose start already went upstream.
          this.s.x.log.warn('request body arrived STREAMED; mutations dropped (set request_body_mode BUFFERED or allow_mode_override)');
          o.body = undefined;
          o.clearHeaderMutations();
        }
        return;
      case 'response_headers':
        // Envoy strips content-length for STREAMED only when the mode is set before it sees the
        // headers; after an override to STREAMED we must remove it ourselves (facts §2.5).
        if (mode?.response_body_mode === 'STREAMED' && this.s.x.responseHeaders?.has('content-length')) o.removeHeader('content-length');
        return;
      default:
        return;
    }
  }

  private encodeAnswer(kind: RequestKind, o: PhaseOutput): Answer {
    const x = this.s.x;
    const mode = o.reply ? undefined : this.modeOverride(kind);
    if (!o.reply) this.adjust(kind, o, mode);
    if (x.logs('debug')) x.log.debug('decided', { kind, ...describeDecision(o, mode) });
    if (o.reply) {
      x.answeredImmediately = true;
      x.immediateStatus = o.reply.status;
      return encodeResponse(kind, o);
    }
    if (o.isEmpty && !mode) return this.s.deps.continueFor[kind];
    return encodeResponse(kind, o, mode);
  }

  private onRequestHeaders(h: PbHttpHeaders | undefined): Answer | Promise<Answer> {
    if (this.seen & REQUEST_HEADERS) return this.outOfOrder('request_headers');
    this.seen |= REQUEST_HEADERS;
    const s = this.s;
    const x = s.x;
    x.requestHeaders = headersOf(h);
    if (s.role === 'router') {
      if (this.pipeline.hasObservers) s.release = s.deps.links.register(x, s.finish.bind(s));
      // Attempt stages on this replica may read this exchange (RouterView); cost only when some exist.
      if (s.deps.pipeline('attempt').stages.length > 0) s.published = s.deps.links.publishRouter(x);
    } else {
      x.router = s.deps.links.routerView(x.requestId);
    }
    if (h?.end_of_stream) this.seen |= REQUEST_BODY_DONE;
    const override = requestHeadersOverride(this.pipeline.needs, x.protocol, this.modes, s.role);
    if (!this.pipeline.has('requestHeaders')) {
      // Depends only on the pipeline and Envoy's modes: encode once per combination.
      if (!override) return s.deps.continueFor.request_headers;
      if (x.logs('debug')) x.log.debug('decided', { kind: 'request_headers', ...describeDecision(undefined, override) });
      return s.deps.encodeOnce(this.pipeline, override);
    }
    this.headersOverride = override;
    return this.finishAnswer('request_headers', this.pipeline.run('requestHeaders', x));
  }

  private onRequestBody(msg: PbHttpBody | undefined): Answer | Promise<Answer> {
    const endOfStream = msg?.end_of_stream === true;
    if (!(this.seen & REQUEST_HEADERS) || this.seen & REQUEST_BODY_DONE) return this.outOfOrder('request_body');
    const s = this.s;
    if (!this.pipeline.has('requestBody')) {
      if (endOfStream) this.seen |= REQUEST_BODY_DONE;
      return s.deps.continueFor.request_body;
    }
    const bytes = msg?.body ?? EMPTY;
    if (!endOfStream) {
      // Envoy was not switched to BUFFERED (allow_mode_override off?): collect the chunks; the
      // stages see the whole body at the end, but earlier chunks are already upstream.
      (this.requestChunks ??= []).push(bytes);
      return s.deps.continueFor.request_body;
    }
    this.seen |= REQUEST_BODY_DONE;
    this.bodyStreamed = this.requestChunks !== undefined;
    const body = this.requestChunks ? Buffer.concat([...this.requestChunks, bytes]) : bytes;
    this.requestChunks = undefined;
    s.x.requestBody = body;
    return this.finishAnswer('request_body', this.pipeline.run('requestBody', s.x, { bytes: body, endOfStream: true }));
  }

  private onResponseHeaders(h: PbHttpHeaders | undefined): Answer | Promise<Answer> {
    if (this.seen & RESPONSE_HEADERS) return this.outOfOrder('response_headers');
    this.seen |= RESPONSE_HEADERS;
    const s = this.s;
    const x = s.x;
    x.responseHeaders = headersOf(h);
    if (h?.end_of_stream) {
      x.responseComplete = true;
      this.responseEnded = true;
    }
    if (!this.pipeline.has('responseHeaders')) {
      if (!this.modeOverride('response_headers')) return s.deps.continueFor.response_headers;
      return this.finishAnswer('response_headers', new PhaseOutput());
    }
    return this.finishAnswer('response_headers', this.pipeline.run('responseHeaders', x));
  }

  private onResponseBody(msg: PbHttpBody | undefined): Answer | Promise<Answer> {
    if (!(this.seen & RESPONSE_HEADERS)) return this.outOfOrder('response_body');
    const x = this.s.x;
    if (msg?.end_of_stream) x.responseComplete = true;
    if (!this.pipeline.has('responseBody') || !wantsResponseBody(this.pipeline.needs, x)) return this.s.deps.continueFor.response_body;
    const chunk = { bytes: msg?.body ?? EMPTY, endOfStream: msg?.end_of_stream === true };
    return this.finishAnswer('response_body', this.pipeline.run('responseBody', x, chunk));
  }
}
