/**
 * @module usage/collector
 * What the `usage` stage gathers from one response while it flows: the provider's usage
 * (providers/usage.ts, counted once however the stream is cut into chunks), the model the
 * response names, an in-stream error, and when the first byte came. Reads the events the
 * exchange already parsed (`x.responseEvents`), so an SSE chunk is split into events once for
 * every stage; each event's JSON is parsed here once and handed to the extractor.
 */
import type { Exchange } from '../pipeline/exchange.js';
import type { BodyChunk } from '../pipeline/phases.js';
import { eventJson, type SseEvent } from '../providers/sse.js';
import type { Dialect } from '../providers/types.js';
import { PlainDeltaShape, readTextOnly, UsageExtractor } from '../providers/usage.js';
import { dialectOfRequestPath } from '../providers/paths.js';

/** Largest non-streamed JSON answer read for usage (bigger ones are counted as unreadable). */
export const MAX_JSON_BYTES = 8 * 1024 * 1024;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One response's usage facts. */
export class UsageCollector {
  readonly extractor: UsageExtractor;
  /** performance.now() of the first non-empty response chunk. */
  firstByteAt: number | undefined;
  /** The stream carried a provider error event (OpenAI `{"error":…}`, Anthropic `event: error`). */
  streamError = false;
  /** Model named by the response itself (the served model as the provider calls it). */
  responseModel: string | undefined;
  /** Some response body reached the collector. */
  sawBody = false;
  /** A JSON body was too large or not JSON. */
  unreadable = false;
  private json: Buffer[] | undefined;
  /** The shape of this stream's plain text deltas (OpenAI), once one was read. */
  private readonly shape: PlainDeltaShape | undefined;
  private lastChunk: BodyChunk | undefined;
  private jsonBytes = 0;

  constructor(readonly dialect: Dialect) {
    this.extractor = new UsageExtractor(dialect);
    if (dialect === 'openai') this.shape = new PlainDeltaShape();
  }

  /** The model generated something (the provider reported usage, or output text passed). */
  get generated(): boolean {
    const u = this.extractor.usage;
    return u.complete || u.outputTokens > 0 || this.extractor.textLength > 0;
  }

  /**
   * Feeds one response chunk (main stream or observability stream). Idempotent per chunk: the
   * `usage` and `rate-limit` stages feed the same shared collector (`responseUsage`).
   */
  chunk(x: Exchange, chunk: BodyChunk, now?: number): void {
    if (chunk === this.lastChunk) return;
    this.lastChunk = chunk;
    if (chunk.bytes.length > 0) {
      this.sawBody = true;
      if (this.firstByteAt === undefined) this.firstByteAt = now ?? performance.now();
    }
    if (x.responseIsEventStream) {
      // A chunk that is one plain delta of this stream's learned shape, which no stage has
      // parsed yet: its text is read from the bytes, and the chunk is never split into events.
      if (this.shape !== undefined && this.responseModel !== undefined && x.responseEventsUnread(chunk)) {
        const text = this.shape.readChunk(chunk.bytes);
        if (text !== undefined) {
          this.extractor.takeText(text);
          return;
        }
      }
      const events = x.responseEvents(chunk);
      for (let i = 0; i < events.length; i++) this.event(events[i]!);
      return;
    }
    // A JSON answer: whole in one buffered chunk on the main stream, in pieces on the observer's.
    if (this.unreadable) return;
    if (chunk.bytes.length > 0) {
      this.jsonBytes += chunk.bytes.length;
      if (this.jsonBytes > MAX_JSON_BYTES) {
        this.unreadable = true;
        this.json = undefined;
        return;
      }
      (this.json ??= []).push(chunk.bytes);
    }
    if (chunk.endOfStream && this.json) {
      const body = this.json.length === 1 ? this.json[0]! : Buffer.concat(this.json);
      this.json = undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        this.unreadable = true;
        return;
      }
      if (isObj(parsed)) {
        if (typeof parsed['model'] === 'string') this.responseModel = parsed['model'];
        if (parsed['error'] !== undefined || parsed['type'] === 'error') this.streamError = true;
      }
      this.extractor.fromJson(parsed);
    }
  }

  private event(e: SseEvent): void {
    const data = e.data;
    if (this.dialect === 'openai' && data === '[DONE]') {
      this.extractor.push(e);
      return;
    }
    // Text-only deltas wait unparsed until (unless) the text is needed. OpenAI names the model on
    // every chunk: the first one is read for it.
    if (this.dialect === 'anthropic' || this.responseModel !== undefined) {
      const known = this.shape?.read(data);
      if (known !== undefined) {
        this.extractor.takeTextOnly(e, known);
        return;
      }
      const text = readTextOnly(e, this.dialect);
      if (text !== undefined) {
        if (typeof text === 'string') this.shape?.learn(data);
        this.extractor.takeTextOnly(e, text);
        return;
      }
    }
    const json = eventJson(e);
    if (!isObj(json)) return;
    if (this.dialect === 'openai') {
      if (this.responseModel === undefined && typeof json['model'] === 'string') this.responseModel = json['model'];
      if (json['error'] !== undefined && json['error'] !== null) this.streamError = true;
    } else if (json['type'] === 'message_start') {
      const m = json['message'];
      if (isObj(m) && typeof m['model'] === 'string') this.responseModel = m['model'];
    } else if (json['type'] === 'error') {
      this.streamError = true;
    }
    this.extractor.push(e, json);
  }
}

const shared = new WeakMap<Exchange, UsageCollector>();

/**
 * The exchange's one reading of its response's usage, shared by every stage that needs it
 * (`usage` records it, `rate-limit` settles with it): one collector, each chunk read once.
 */
export function responseUsage(x: Exchange): UsageCollector {
  let c = shared.get(x);
  if (c === undefined) {
    c = new UsageCollector(dialectOfRequestPath(x.requestHeaders?.get(':path')));
    shared.set(x, c);
  }
  return c;
}
