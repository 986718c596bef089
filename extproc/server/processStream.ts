/**
 * @module server/processStream
 * The protocol adapter for one ext_proc stream (= one HTTP request): decodes each
 * ProcessingRequest into a pipeline phase, runs the stages, and answers with exactly one
 * ProcessingResponse of the matching kind, in arrival order (envoy-ext-proc-facts.md §1.1, §2.1).
 *
 * Messages are handled strictly one after another: STREAMED body chunks arrive pipelined and
 * request/response messages may interleave, but Envoy re-injects chunks in the order of our
 * answers, so answers must keep the order of the questions even when a stage awaits I/O.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { Exchange } from '../pipeline/exchange.js';
import type { HeaderView } from '../pipeline/headers.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { FilterRole } from '../pipeline/stage.js';
import type { PhaseOutput } from '../pipeline/output.js';
import { describeError, type Logger } from '../telemetry/logger.js';
import { attributesOf, headersOf, metadataOf, roleOf } from './decode.js';
import { describeDecision, encodeResponse } from './encode.js';
import type { ExchangeLinks } from './exchangeLinks.js';
import { requestHeadersOverride, responseHeadersOverride, wantsResponseBody, type EffectiveModes } from './modes.js';
import { UNDECODABLE, type PbHttpBody, type PbHttpHeaders, type PbProcessingMode, type PbProcessingRequest, type PbProcessingResponse, type RequestKind } from './protocol.js';

/** What the adapter needs from the server. */
export interface StreamDeps {
  /** The pipeline for a filter role, of the config generation in force when the stream opens. */
  pipeline(role: FilterRole): Pipeline;
  log: Logger;
  /** Pre-encoded plain CONTINUE answer for each kind (encoded once at start-up). */
  continueFor: Record<RequestKind, Buffer>;
  /** The request-headers CONTINUE with `override`, encoded once per pipeline and override. */
  encodeOnce(pipeline: Pipeline, override: PbProcessingMode): Buffer;
  /** Largest request body the gateway parses (see Exchange.requestJson). */
  maxInspectBytes: number;
  /** Joins a request's main and observability streams. */
  links: ExchangeLinks;
  /** Called when the stream is over (for graceful shutdown accounting). */
  onClosed(stream: ProcessStream): void;
}

type Call = ServerDuplexStream<PbProcessingRequest, PbProcessingResponse>;
type Answer = PbProcessingResponse | null;

const REQUEST_HEADERS = 1;
const REQUEST_BODY_DONE = 2;
const RESPONSE_HEADERS = 4;

const EMPTY = Buffer.alloc(0);
const ATTEMPT_FIELDS = { filter: 'attempt' };

/** google.protobuf.Duration for a number of milliseconds. */
function durationOf(ms: number): { seconds: number; nanos: number } {
  const whole = Math.max(1, Math.round(ms));
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1_000_000 };
}

/** One ext_proc stream. */
export class ProcessStream {
  private readonly pipeline: Pipeline;
  private x: Exchange;
  /** Releases this stream's hold on the exchange; the last holder runs the finish hooks. */
  private release: (() => void) | undefined;
  private readonly modes: EffectiveModes = { requestBodyMode: 'NONE', responseBodyMode: 'NONE' };
  /** Messages that arrived while a stage was awaiting I/O (allocated on first need). */
  private queue: PbProcessingRequest[] | undefined;
  /** Request body chunks when Envoy sends the body STREAMED (allocated on first need). */
  private requestChunks: Buffer[] | undefined;
  private seen = 0;
  private first = true;
  private busy = false;
  private halfClosed = false;
  private done = false;
  private answeredImmediately = false;
  private warnedOrder = false;
  /** Envoy runs this filter in observability mode: no answers expected. */
  private observability = false;
  /** A message is being answered (a stage may ask for more time). */
  private answering = false;
  /** More time was already asked for the message being answered (Envoy honours it once). */
  private extended = false;

  constructor(
    private readonly call: Call,
    private readonly deps: StreamDeps,
  ) {
    const role = roleOf(call.metadata);
    this.pipeline = deps.pipeline(role);
    this.x = new Exchange(deps.log, deps.maxInspectBytes, role === 'router' ? undefined : ATTEMPT_FIELDS);
    this.x.moreTimeHandler = (ms) => this.extendTimeout(ms);
    call.on('data', (msg: PbProcessingRequest) => this.onMessage(msg));
    // Envoy half-closes, then cancels (client_impl.cc close()); both are normal ends.
    call.on('end', () => {
      this.halfClosed = true;
      this.maybeEnd();
    });
    call.on('cancelled', () => this.close('cancelled'));
    call.on('error', (err) => this.close(`error: ${describeError(err)}`));
  }

  /** Ends the stream now (forced shutdown). */
  cancel(): void {
    if (this.done) return;
    this.call.end();
    this.close('shutdown');
  }

  /** Sends override_message_timeout for the message being answered (see Exchange.requestMoreTime). */
  private extendTimeout(ms: number): boolean {
    if (!this.answering || this.extended || this.done || this.observability) return false;
    this.extended = true;
    this.call.write({ override_message_timeout: durationOf(ms) });
    return true;
  }

  private onMessage(msg: PbProcessingRequest): void {
    if (this.done) return;
    if (this.busy) (this.queue ??= []).push(msg);
    else this.step(msg);
  }

  private step(msg: PbProcessingRequest): void {
    let answer: Answer | Promise<Answer>;
    this.answering = true;
    this.extended = false;
    try {
      answer = this.handle(msg);
    } catch (err) {
      answer = this.internalError(msg, err);
    }
    if (answer instanceof Promise) {
      this.busy = true;
      answer
        .catch((err: unknown) => this.internalError(msg, err))
        .then((a) => {
          this.answering = false;
          this.busy = false;
          this.send(a);
          this.drain();
        });
    } else {
      this.answering = false;
      this.send(answer);
    }
  }

  private drain(): void {
    while (!this.busy && !this.done && this.queue !== undefined && this.queue.length > 0) this.step(this.queue.shift()!);
    this.maybeEnd();
  }

  private send(answer: Answer): void {
    if (answer === null || this.done) return;
    this.call.write(answer);
  }

  private maybeEnd(): void {
    if (this.halfClosed && !this.busy && !this.queue?.length && !this.done) {
      this.call.end();
      this.close('completed');
    }
  }

  private close(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.queue = undefined;
    if (this.x.logs('debug')) this.x.log.debug('stream closed', { reason, ms: Math.round(performance.now() - this.x.startedAt) });
    this.deps.onClosed(this);
    if (this.release) this.release();
    // An observability stream's exchange is finished by its main stream; one that found no main
    // stream must not run finish hooks a second time for the same request.
    else if (!this.observability) this.pipeline.finish(this.x);
  }

  /** A bug in the adapter or a stage must cost this request its processing, not the server. */
  private internalError(msg: PbProcessingRequest, err: unknown): Answer {
    this.x.log.error('internal error; continuing unchanged', { kind: msg.request ?? 'unknown', error: describeError(err) });
    return msg.request ? this.deps.continueFor[msg.request] : null;
  }

  private handle(msg: PbProcessingRequest): Answer | Promise<Answer> {
    if (msg.request === undefined) {
      // No kind means we cannot answer with the matching kind. Closing the stream with OK makes
      // Envoy proceed without us ("If the server closes the gRPC stream cleanly, the data plane
      // proceeds without consulting the server", external_processor.proto).
      this.x.log.warn('malformed ProcessingRequest; closing stream so Envoy continues without the gateway', {
        reason: msg === UNDECODABLE ? 'undecodable protobuf' : 'no request kind',
      });
      this.call.end();
      this.close('malformed');
      return null;
    }
    if (this.first) this.readFirst(msg);
    if (msg.metadata_context?.filter_metadata) this.x.setMetadataSource(() => metadataOf(msg));
    if (msg.attributes) Object.assign(this.x.attributes, attributesOf(msg));
    if (this.answeredImmediately) return null;
    // Observability mode is send-and-go: Envoy expects no answer (ProcessingRequest.observability_mode).
    if (this.observability) return this.observe(msg.request, msg);
    return this.dispatch(msg.request, msg);
  }

  /**
   * An observability-mode stream: links to the main stream's exchange by request id and feeds
   * response chunks to the observer stages. Everything else already ran on the main stream.
   */
  private observe(kind: RequestKind, msg: PbProcessingRequest): null | Promise<null> {
    if (kind === 'request_headers') {
      const headers = headersOf(msg.request_headers);
      const requestId = headers.get('x-request-id');
      const link = requestId ? this.deps.links.acquire(requestId) : undefined;
      if (link) {
        this.x = link.x;
        this.release = link.release;
      } else {
        this.x.requestHeaders = headers;
        if (this.pipeline.hasObservers) this.x.log.warn('observability stream without a main stream to join; its chunks feed a detached exchange', { filter: 'observer' });
      }
    } else if (kind === 'response_headers' && this.x.responseHeaders === undefined) {
      this.readResponseHeaders(msg.response_headers);
    } else if (kind === 'response_body' && this.pipeline.hasObservers) {
      const body = msg.response_body;
      const pending = this.pipeline.observe(this.x, { bytes: body?.body ?? EMPTY, endOfStream: body?.end_of_stream === true });
      if (pending) return pending.then(() => null);
    }
    return null;
  }

  private readFirst(msg: PbProcessingRequest): void {
    this.first = false;
    this.observability = msg.observability_mode === true;
    const pc = msg.protocol_config;
    if (pc) {
      this.x.protocol = {
        requestBodyMode: pc.request_body_mode ?? 'NONE',
        responseBodyMode: pc.response_body_mode ?? 'NONE',
        sendBodyWithoutWaitingForHeaderResponse: pc.send_body_without_waiting_for_header_response === true,
      };
    }
    this.modes.requestBodyMode = this.x.protocol.requestBodyMode;
    this.modes.responseBodyMode = this.x.protocol.responseBodyMode;
  }

  private dispatch(kind: RequestKind, msg: PbProcessingRequest): Answer | Promise<Answer> {
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
        return this.deps.continueFor[kind];
    }
  }

  private outOfOrder(kind: RequestKind): Answer {
    if (!this.warnedOrder) {
      this.warnedOrder = true;
      this.x.log.warn('out-of-order ProcessingRequest; continuing unchanged', { kind });
    }
    return this.deps.continueFor[kind];
  }

  private finishAnswer(kind: RequestKind, out: PhaseOutput | Promise<PhaseOutput>, override?: PbProcessingMode, adjust?: (o: PhaseOutput) => void): Answer | Promise<Answer> {
    const encode = (o: PhaseOutput): Answer => {
      if (!o.reply) adjust?.(o);
      if (this.x.logs('debug')) this.x.log.debug('decided', { kind, ...describeDecision(o, override) });
      if (o.reply) {
        this.answeredImmediately = true;
        return encodeResponse(kind, o);
      }
      if (o.isEmpty && !override) return this.deps.continueFor[kind];
      return encodeResponse(kind, o, override);
    };
    return out instanceof Promise ? out.then(encode) : encode(out);
  }

  private onRequestHeaders(h: PbHttpHeaders | undefined): Answer | Promise<Answer> {
    if (this.seen & REQUEST_HEADERS) return this.outOfOrder('request_headers');
    this.seen |= REQUEST_HEADERS;
    this.x.requestHeaders = headersOf(h);
    if (this.pipeline.hasObservers) this.release = this.deps.links.register(this.x, () => this.pipeline.finish(this.x));
    if (h?.end_of_stream) this.seen |= REQUEST_BODY_DONE;
    const override = requestHeadersOverride(this.pipeline.needs, this.x.protocol, this.modes);
    if (!this.pipeline.has('requestHeaders')) {
      // Depends only on the pipeline and Envoy's modes: encode once per combination.
      if (!override) return this.deps.continueFor.request_headers;
      if (this.x.logs('debug')) this.x.log.debug('decided', { kind: 'request_headers', ...describeDecision(undefined, override) });
      return this.deps.encodeOnce(this.pipeline, override);
    }
    return this.finishAnswer('request_headers', this.pipeline.run('requestHeaders', this.x), override);
  }

  private onRequestBody(msg: PbHttpBody | undefined): Answer | Promise<Answer> {
    const endOfStream = msg?.end_of_stream === true;
    if (!(this.seen & REQUEST_HEADERS) || this.seen & REQUEST_BODY_DONE) return this.outOfOrder('request_body');
    if (!this.pipeline.has('requestBody')) {
      if (endOfStream) this.seen |= REQUEST_BODY_DONE;
      return this.deps.continueFor.request_body;
    }
    const bytes = msg?.body ?? EMPTY;
    if (!endOfStream) {
      // Envoy was not switched to BUFFERED (allow_mode_override off?): collect the chunks; the
      // stages see the whole body at the end, but earlier chunks are already upstream.
      (this.requestChunks ??= []).push(bytes);
      return this.deps.continueFor.request_body;
    }
    this.seen |= REQUEST_BODY_DONE;
    const streamed = this.requestChunks !== undefined;
    const body = this.requestChunks ? Buffer.concat([...this.requestChunks, bytes]) : bytes;
    this.requestChunks = undefined;
    this.x.requestBody = body;
    const out = this.pipeline.run('requestBody', this.x, { bytes: body, endOfStream: true });
    return this.finishAnswer('request_body', out, undefined, (o) => {
      if (streamed && (o.body !== undefined || o.setHeaders.size > 0 || o.removeHeaders.size > 0)) {
        // Envoy ignores header mutations on STREAMED body answers, and a replacement of the last
        // chunk would corrupt a body whose start already went upstream.
        this.x.log.warn('request body arrived STREAMED; mutations dropped (set request_body_mode BUFFERED or allow_mode_override)');
        o.body = undefined;
        o.setHeaders.clear();
        o.removeHeaders.clear();
      }
    });
  }

  private onResponseHeaders(h: PbHttpHeaders | undefined): Answer | Promise<Answer> {
    if (this.seen & RESPONSE_HEADERS) return this.outOfOrder('response_headers');
    this.seen |= RESPONSE_HEADERS;
    const headers = this.readResponseHeaders(h);
    const override = h?.end_of_stream ? undefined : responseHeadersOverride(this.pipeline.needs, this.x, this.modes);
    if (!this.pipeline.has('responseHeaders') && !override) return this.deps.continueFor.response_headers;
    const out = this.pipeline.run('responseHeaders', this.x);
    return this.finishAnswer('response_headers', out, override, (o) => {
      // Envoy strips content-length for STREAMED only when the mode is set before it sees the
      // headers; after an override to STREAMED we must remove it ourselves (§2.5).
      if (override?.response_body_mode === 'STREAMED' && headers.has('content-length')) o.removeHeader('content-length');
    });
  }

  private readResponseHeaders(h: PbHttpHeaders | undefined): HeaderView {
    const headers = headersOf(h);
    this.x.responseHeaders = headers;
    return headers;
  }

  private onResponseBody(msg: PbHttpBody | undefined): Answer | Promise<Answer> {
    if (!(this.seen & RESPONSE_HEADERS)) return this.outOfOrder('response_body');
    if (!this.pipeline.has('responseBody') || !wantsResponseBody(this.pipeline.needs, this.x)) return this.deps.continueFor.response_body;
    const chunk = { bytes: msg?.body ?? EMPTY, endOfStream: msg?.end_of_stream === true };
    return this.finishAnswer('response_body', this.pipeline.run('responseBody', this.x, chunk));
  }
}
