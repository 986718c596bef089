/**
 * One direction of the ext_proc filter (processor_state.cc ProcessorState): processing mode and
 * body-mode helpers, what the filter holds (headers, buffered body, chunk queue), the per-message
 * timer (onStartProcessorCall / onFinishProcessorCall), and forwarding to the next filter.
 */
import type { BodySendMode, ExtProcConfig, ProcessingMode } from './config/index.js';
import type { FilterCallbacks } from './filterManager.js';
import type { HeaderMap } from './headers.js';

export type CallbackState =
  | 'Idle'
  | 'HeadersCallback'
  | 'BufferedBodyCallback'
  | 'StreamedBodyCallback'
  | 'BufferedPartialBodyCallback'
  | 'TrailersCallback';

export interface QueuedChunk {
  data: Buffer;
  endStream: boolean;
}

export const EMPTY = Buffer.alloc(0);

/** One direction's state (ProcessorState: DecodingProcessorState / EncodingProcessorState). */
export class ProcessorState {
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
  /**
   * Data held by the filter manager for this filter (StopIterationAndBuffer/Watermark). Stored in
   * a buffer with spare capacity that doubles when full, so appending N pieces copies O(total)
   * bytes (a 5 MB body arrives in ~50,000 pieces; copying the whole buffer per piece was quadratic).
   */
  private store: Buffer | null = null;
  private storeLen = 0;
  get bufferedData(): Buffer | null {
    return this.store === null ? null : this.store.subarray(0, this.storeLen);
  }
  set bufferedData(b: Buffer | null) {
    this.store = b;
    this.storeLen = b?.length ?? 0;
  }
  chunkQueue: QueuedChunk[] = [];
  sentAttributes = false;
  timer?: NodeJS.Timeout;
  newTimeoutReceived = false;
  /** end_stream seen by this filter in this direction. */
  observedEnd = false;
  headersForwarded = false;
  endForwarded = false;

  constructor(
    readonly dir: 'request' | 'response',
    private readonly cb: FilterCallbacks,
    private readonly config: ExtProcConfig,
    /** Filter::onMessageTimeout, run when this direction's message timer fires. */
    private readonly onMessageTimeout: () => void,
  ) {}

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
    const need = this.storeLen + data.length;
    if (this.store === null || need > this.store.length) {
      // Grow to at least double; earlier views (bufferedData) keep pointing at the old bytes.
      const grown = Buffer.allocUnsafe(Math.max(need, (this.store?.length ?? 0) * 2, 16 * 1024));
      if (this.store !== null) this.store.copy(grown, 0, 0, this.storeLen);
      this.store = grown;
    }
    data.copy(this.store, this.storeLen);
    this.storeLen = need;
  }

  /** Appends to the filter manager's buffer; over the limit → 413 / 500 (facts §2.4). */
  bufferChecked(data: Buffer): boolean {
    this.appendBuffered(data);
    if (this.bufferedData!.length > this.cb.bufferLimit) {
      this.cb.bufferOverLimit(this.dir);
      return false;
    }
    return true;
  }

  // ---- forwarding (the filter manager's continue/inject) ------------------------------------------

  forwardHeaders(h: HeaderMap, eos: boolean): void {
    this.headersForwarded = true;
    if (eos) this.endForwarded = true;
    if (this.dir === 'request') this.cb.continueDecodeHeaders(h, eos);
    else this.cb.continueEncodeHeaders(h, eos);
  }

  /** Data to the next filter; like injectDecodedDataToFilterChain it continues held headers first. */
  forwardData(data: Buffer, eos: boolean): void {
    if (this.endForwarded) return;
    if (data.length === 0 && !eos) return;
    if (!this.headersForwarded) this.forwardHeaders(this.headerMap!, false);
    if (eos) this.endForwarded = true;
    if (this.dir === 'request') this.cb.continueDecodeData(data, eos);
    else this.cb.continueEncodeData(data, eos);
  }

  /** ProcessorState::continueIfNecessary. */
  continueIfNecessary(): void {
    if (!this.paused) return;
    this.paused = false;
    // ActiveStreamFilterBase::commonContinue: headers (end_stream if nothing follows), then the
    // buffered data; a StopIterationNoBuffer end_stream resumes as an empty end_stream frame.
    if (!this.headersForwarded) {
      this.forwardHeaders(this.headerMap!, this.observedEnd && this.bufferedData === null);
    }
    if (!this.endForwarded && (this.bufferedData !== null || this.observedEnd)) {
      const d = this.bufferedData ?? EMPTY;
      this.bufferedData = null;
      this.forwardData(d, this.observedEnd);
    }
  }

  // ---- per-message timer ---------------------------------------------------------------------------

  /** ProcessorState::onStartProcessorCall: (re)arms the per-message timer. */
  startCall(cs: CallbackState): void {
    this.callbackState = cs;
    this.newTimeoutReceived = false;
    if (this.config.observabilityMode) return; // no message timer in observability mode
    this.stopTimer();
    this.timer = setTimeout(() => this.onMessageTimeout(), this.config.messageTimeoutMs);
  }

  /** ProcessorState::onFinishProcessorCall. */
  finishCall(next: CallbackState = 'Idle'): void {
    this.stopTimer();
    this.callbackState = next;
    this.newTimeoutReceived = false;
  }

  stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
