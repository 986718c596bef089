/**
 * @module pipeline/exchange
 * Per-request state shared by the stages of one HTTP exchange (one ext_proc stream). The
 * protocol adapter fills the Envoy-provided facts; stages keep their own results in typed
 * slots, each written by one stage and read by later ones.
 */
import { randomUUID } from 'node:crypto';
import type { LogFields, LogLevel, Logger } from '../telemetry/logger.js';
import { GatewayError } from '../errors.js';
import type { HeaderView } from './headers.js';

/** A typed key for a slot of exchange state. */
export interface Slot<T> {
  readonly name: string;
  /** Phantom field carrying the slot's type. */
  readonly __type?: T;
}

/** Declares a slot; the name is for diagnostics. */
export function slot<T>(name: string): Slot<T> {
  return { name };
}

/** Body send modes Envoy is configured with (ProtocolConfiguration, first message only). */
export interface EnvoyProtocol {
  requestBodyMode: string;
  responseBodyMode: string;
  sendBodyWithoutWaitingForHeaderResponse: boolean;
}

/** Envoy's defaults when no protocol_config came (body modes NONE). Shared, never mutated. */
const NO_PROTOCOL: EnvoyProtocol = Object.freeze({ requestBodyMode: 'NONE', responseBodyMode: 'NONE', sendBodyWithoutWaitingForHeaderResponse: false });

const utf8 = new TextDecoder('utf-8', { fatal: true });
const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;

/** State of one HTTP exchange. */
export class Exchange {
  private id: string | undefined;
  private boundLog: Logger | undefined;
  /** When the ext_proc stream opened (ms, performance clock). */
  readonly startedAt = performance.now();
  /** Envoy's body modes for this filter, as announced in the first message. */
  protocol: EnvoyProtocol = NO_PROTOCOL;
  /** Envoy attributes (CEL expression → value), request and response side merged. */
  attributes: Record<string, unknown> = {};
  private metadataValue: Record<string, unknown> | undefined;
  private metadataSource: (() => Record<string, unknown>) | undefined;

  requestHeaders: HeaderView | undefined;
  /** The complete request body, once received. */
  requestBody: Buffer | undefined;
  responseHeaders: HeaderView | undefined;
  /** Set when the request could not be read and was passed through untouched (why, for logs). */
  uninspectable: string | undefined;

  private slots: Map<Slot<unknown>, unknown> | undefined;
  private parsedJson: { value: unknown } | { error: GatewayError } | undefined;
  private responseBodyWanted = false;

  /**
   * @param logFields fields every line of this exchange carries besides the request id
   *   (e.g. which filter the stream came from)
   */
  constructor(
    private readonly baseLog: Logger,
    private readonly maxInspectBytes: number,
    private readonly logFields?: LogFields,
  ) {}

  /**
   * Envoy dynamic metadata forwarded to us (namespace → plain object), from the latest message
   * that carried some. Converted on first read: Envoy repeats it on every message, chunks included.
   */
  get metadata(): Record<string, unknown> {
    if (this.metadataSource) {
      this.metadataValue = this.metadataSource();
      this.metadataSource = undefined;
    }
    return this.metadataValue ?? {};
  }

  /** Records where the latest forwarded metadata can be read from (see `metadata`). */
  setMetadataSource(read: () => Record<string, unknown>): void {
    this.metadataSource = read;
  }

  /**
   * Envoy's `x-request-id` (generated here if absent), carried on every log line. Read lazily:
   * a pass-through exchange that never logs never looks it up.
   */
  get requestId(): string {
    return (this.id ??= this.requestHeaders?.get('x-request-id') || randomUUID());
  }

  /** `:status` of the upstream (or local) response, once its headers arrived. */
  get responseStatus(): number | undefined {
    const status = this.responseHeaders?.get(':status');
    return status === undefined ? undefined : Number(status);
  }

  /** True when the response is an SSE stream (`text/event-stream`). */
  get responseIsEventStream(): boolean {
    return /^text\/event-stream/i.test(this.responseHeaders?.get('content-type') ?? '');
  }

  /** True when `level` is logged; asks the base logger, so no bound logger is built for the question. */
  logs(level: LogLevel): boolean {
    return this.baseLog.enabled(level);
  }

  /** Logger bound to the request id (built on first use: most exchanges never log). */
  get log(): Logger {
    return (this.boundLog ??= this.baseLog.child({ request_id: this.requestId, ...this.logFields }));
  }

  get<T>(key: Slot<T>): T | undefined {
    return this.slots?.get(key) as T | undefined;
  }

  set<T>(key: Slot<T>, value: T): void {
    (this.slots ??= new Map()).set(key, value);
  }

  /** Set by the protocol adapter while a message is being answered; see `requestMoreTime`. */
  moreTimeHandler: ((ms: number) => boolean) | undefined;

  /**
   * Asks Envoy to wait up to `ms` for the answer being prepared (ProcessingResponse
   * override_message_timeout), for a stage about to do slow I/O. Envoy honours it once per
   * message and only within the filter's `max_message_timeout`. Returns false when it cannot be
   * sent (not while answering a message, already sent for this message, observability stream).
   */
  requestMoreTime(ms: number): boolean {
    return this.moreTimeHandler?.(ms) ?? false;
  }

  /** Asks for this exchange's response body (stages with `responseBodyUse: 'on-demand'`). */
  wantResponseBody(): void {
    this.responseBodyWanted = true;
  }

  get responseBodyRequested(): boolean {
    return this.responseBodyWanted;
  }

  /**
   * The request body as JSON, parsed once however many stages ask. Throws a GatewayError
   * (INVALID_REQUEST, UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE) when the body cannot be read;
   * the runner applies `pipeline.onInvalidRequest` to it.
   */
  requestJson(): unknown {
    if (!this.parsedJson) this.parsedJson = this.parseRequestJson();
    if ('error' in this.parsedJson) throw this.parsedJson.error;
    return this.parsedJson.value;
  }

  private parseRequestJson(): { value: unknown } | { error: GatewayError } {
    const body = this.requestBody;
    if (!body || body.length === 0) return { error: new GatewayError('INVALID_REQUEST', 'request body is empty') };
    const contentType = this.requestHeaders?.get('content-type');
    if (contentType !== undefined && !JSON_TYPE.test(contentType)) {
      return { error: new GatewayError('UNSUPPORTED_MEDIA_TYPE', 'request content-type must be application/json') };
    }
    // JSON.parse blocks the event loop for ~2 ms per MiB; larger bodies are refused for
    // inspection rather than stalling every other stream (see README, "Limits").
    if (body.length > this.maxInspectBytes) {
      return { error: new GatewayError('PAYLOAD_TOO_LARGE', `request body exceeds ${this.maxInspectBytes} bytes inspected by the gateway`) };
    }
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return { error: new GatewayError('INVALID_REQUEST', 'request body is not valid UTF-8') };
    }
    try {
      return { value: JSON.parse(text) as unknown };
    } catch {
      return { error: new GatewayError('INVALID_REQUEST', 'request body is not valid JSON') };
    }
  }
}
