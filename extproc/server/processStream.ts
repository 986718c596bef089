/**
 * @module server/processStream
 * The protocol adapter for one ext_proc stream (= one HTTP request on one filter): keeps the
 * order of answers, the queue of messages that arrive while a stage awaits I/O, and the end of
 * the stream. What each message means is decided by the stream's handler: `MainHandler` for the
 * router and attempt filters (answers every message), `ObserverHandler` for Envoy's
 * observability-mode filter (answers nothing).
 *
 * Messages are handled strictly one after another: STREAMED body chunks arrive pipelined and
 * request/response messages may interleave, but Envoy re-injects chunks in the order of our
 * answers, so answers must keep the order of the questions even when a stage awaits I/O
 * (envoy-ext-proc-facts.md §1.1, §2.1).
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { StreamExchange, type TimeExtender } from '../pipeline/exchange.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { FilterRole } from '../pipeline/stage.js';
import { describeError, type Logger } from '../telemetry/logger.js';
import { attributesOf, metadataOf, roleOf } from './decode.js';
import type { ExchangeLinks } from './exchangeLinks.js';
import { MainHandler } from './mainHandler.js';
import { ObserverHandler } from './observerHandler.js';
import { outcomeOf, type CloseReason } from './outcome.js';
import { UNDECODABLE, type PbProcessingMode, type PbProcessingRequest, type PbProcessingResponse, type RequestKind } from './protocol.js';

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
  /** Joins a request's main, observability and attempt streams. */
  links: ExchangeLinks;
  /** Called when the stream is over (for graceful shutdown accounting). */
  onClosed(stream: ProcessStream): void;
  /** Pending finish work, so shutdown can wait for it. */
  trackFinish(work: Promise<void>): void;
}

/** The gRPC call of one stream. */
export type Call = ServerDuplexStream<PbProcessingRequest, PbProcessingResponse>;
/** An answer: a message to send (object or pre-encoded bytes), or nothing. */
export type Answer = PbProcessingResponse | null;

/** How a stream interprets messages; the core keeps order and lifetime. */
export interface StreamHandler {
  handle(kind: RequestKind, msg: PbProcessingRequest): Answer | Promise<Answer>;
}

/**
 * HOT_PATH_FUNCTIONS: code that runs for every stream or message makes no arrow function (or
 * function expression) of its own to store or hand on; it uses methods, bound methods or module
 * functions. Two measured reasons (Node 20, V8 11.3):
 * - A closure that a function creates and stores into a property is kept alive through every
 *   young-generation GC until the next full one, and with it everything the closure's context
 *   reaches (here the stream, its gRPC call and every message): ~450 KB surviving each scavenge
 *   at one stream in flight, ~30 KB without the closure. The same closure stored by another
 *   function, or a bound function, is collected young.
 * - Closures made per stream are optimised again and again under load: a closure's optimised
 *   code is held strongly only by closures that ran it (weakly by the shared feedback), so a
 *   full GC that finds none of them alive frees it and the next streams compile it anew (shown
 *   standalone; --trace-opt counted ~15 of ours recompiled about 20 times a run).
 */
const ATTEMPT_FIELDS = { filter: 'attempt' };

/** google.protobuf.Duration for a number of milliseconds. */
function durationOf(ms: number): { seconds: number; nanos: number } {
  const whole = Math.max(1, Math.round(ms));
  return { seconds: Math.floor(whole / 1000), nanos: (whole % 1000) * 1_000_000 };
}

/** One ext_proc stream. */
export class ProcessStream implements TimeExtender {
  readonly pipeline: Pipeline;
  readonly role: FilterRole;
  /** The exchange this stream feeds (an observability stream swaps in its main stream's). */
  x: StreamExchange;
  /** Releases this stream's hold on a linked exchange; the last holder runs the finish hooks. */
  release: (() => void) | undefined;
  /** This router exchange is visible to attempt streams (withdrawn when the stream ends). */
  published = false;
  private handler: StreamHandler | undefined;
  /** Messages that arrived while a stage was awaiting I/O (allocated on first need). */
  private queue: PbProcessingRequest[] | undefined;
  private busy = false;
  private halfClosed = false;
  private done = false;
  /** A message is being answered (a stage may ask for more time). */
  private answering = false;
  /** More time was already asked for the message being answered (Envoy honours it once). */
  private extended = false;

  constructor(
    private readonly call: Call,
    readonly deps: StreamDeps,
  ) {
    this.role = roleOf(call.metadata);
    this.pipeline = deps.pipeline(this.role);
    this.x = new StreamExchange(deps.log, deps.maxInspectBytes, this.role, this.role === 'router' ? undefined : ATTEMPT_FIELDS);
    // The stream itself, not an arrow function (HOT_PATH_FUNCTIONS).
    this.x.timeExtender = this;
    // Bound methods, not arrow functions: see HOT_PATH_FUNCTIONS.
    call.on('data', this.onMessage.bind(this));
    // Envoy half-closes, then cancels (client_impl.cc close()); both are normal ends.
    call.on('end', this.onHalfClose.bind(this));
    call.on('cancelled', this.onCancelled.bind(this));
    call.on('error', this.onError.bind(this));
  }

  private onHalfClose(): void {
    this.halfClosed = true;
    this.maybeEnd();
  }

  private onCancelled(): void {
    this.close('cancelled');
  }

  private onError(err: unknown): void {
    this.close('error', describeError(err));
  }

  /** True once the stream ended. */
  get closed(): boolean {
    return this.done;
  }

  /** Ends the stream now (forced shutdown). */
  cancel(): void {
    if (this.done) return;
    this.call.end();
    this.close('shutdown');
  }

  /** Closes the stream with OK: Envoy proceeds without the gateway (external_processor.proto). */
  endNow(reason: CloseReason): void {
    this.call.end();
    this.close(reason);
  }

  /** Sends override_message_timeout for the message being answered (see Exchange.requestMoreTime). */
  extendTimeout(ms: number): boolean {
    if (!this.answering || this.extended || this.done || this.handler instanceof ObserverHandler) return false;
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

  private close(reason: CloseReason, error?: string): void {
    if (this.done) return;
    this.done = true;
    this.queue = undefined;
    const x = this.x;
    if (x.logs('debug')) x.log.debug('stream closed', { reason, ms: Math.round(performance.now() - x.startedAt), ...(error ? { error } : {}) });
    this.deps.onClosed(this);
    if (this.published) this.deps.links.withdrawRouter(x);
    // The main stream's end says how the request ended; the outcome is computed when the
    // exchange finishes, after an observability stream may have seen the response.
    if (!(this.handler instanceof ObserverHandler)) {
      x.closeReason ??= reason;
      x.abortSignal(reason);
    }
    if (this.release) this.release();
    // An observability stream's exchange is finished by its main stream; one that found no main
    // stream must not run finish hooks a second time for the same request.
    else if (!(this.handler instanceof ObserverHandler)) this.finish();
  }

  /** Runs the finish hooks of this stream's exchange (once, by the last holder). */
  finish(): void {
    // Most pipelines have no finish hook: no outcome computed, no promise per stream for them.
    if (!this.pipeline.hasFinishers) return;
    const x = this.x;
    const expectedResponse = this.pipeline.needs.responseHeaders || this.pipeline.hasObservers;
    const outcome = (x.outcome ??= outcomeOf(x, x.closeReason ?? 'completed', expectedResponse));
    const work = this.pipeline.finish(x, outcome);
    if (work) this.deps.trackFinish(work);
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
      this.endNow('malformed');
      return null;
    }
    // Observability mode is send-and-go: Envoy expects no answer (ProcessingRequest.observability_mode).
    this.handler ??= msg.observability_mode === true ? new ObserverHandler(this) : new MainHandler(this);
    if (msg.metadata_context?.filter_metadata) this.x.setMetadataSource(() => metadataOf(msg));
    if (msg.attributes) Object.assign(this.x.attributes, attributesOf(msg));
    if (this.x.answeredImmediately) return null;
    return this.handler.handle(msg.request, msg);
  }
}
