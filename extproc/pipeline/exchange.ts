/**
 * @module pipeline/exchange
 * Per-request state shared by the stages of one HTTP exchange (one ext_proc stream). The
 * protocol adapter fills the Envoy-provided facts; stages keep their own results in typed
 * slots, each written by one stage and read by later ones.
 *
 * Stages see the `Exchange` interface only. `StreamExchange` implements it and adds what the
 * protocol adapter and the pipeline write (Envoy's modes, the more-time hook, the outcome).
 */
import { randomUUID } from 'node:crypto';
import { SseParser, formatSseEvent, type SseEvent } from '../providers/sse.js';
import type { LogFields, LogLevel, Logger } from '../telemetry/logger.js';
import { CARRY_NAMESPACE, carryKey, type Carried } from './carry.js';
import { GatewayError } from './errors.js';
import type { HeaderView } from './headers.js';
import type { BodyChunk } from './phases.js';
import type { FilterRole } from './stage.js';

/** A typed key for a slot of exchange state. */
export interface Slot<T> {
  readonly name: string;
  /** Phantom field carrying the slot's type. */
  readonly __type?: T;
}

/** Declares a slot; the name is for diagnostics (config errors name it). */
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
export const NO_PROTOCOL: EnvoyProtocol = Object.freeze({ requestBodyMode: 'NONE', responseBodyMode: 'NONE', sendBodyWithoutWaitingForHeaderResponse: false });

/**
 * The upstream host Envoy picked for this attempt (attempt filter only), decoded from the CEL
 * attributes envoy.yaml asks for, so no stage reads raw attribute names.
 */
export interface UpstreamInfo {
  /** `filter_metadata.ai_gateway` of the chosen endpoint (provider, model, step…). */
  readonly hostMetadata: Readonly<Record<string, unknown>>;
  readonly clusterName: string | undefined;
  readonly routeName: string | undefined;
}

/**
 * How an exchange ended, for `finish` hooks:
 * - `completed`: the response went through (status in `status`; a 4xx/5xx from the provider is
 *   `upstream-error`);
 * - `unobserved`: the stream ended normally but no stage asked to see the response;
 * - `immediate`: the gateway answered itself (cache hit, limit, error);
 * - `upstream-error`: the provider answered with a status ≥ 400;
 * - `no-response`: the request went upstream but no response reached the gateway: Envoy's own
 *   local reply (an exhausted chain's 503, a timeout's 504) skips ext_proc since Envoy 1.34, or
 *   the client left before an answer;
 * - `client-gone`: the stream was reset while the response was still flowing;
 * - `shutdown`: the gateway cancelled the stream while draining.
 */
export type OutcomeKind = 'completed' | 'unobserved' | 'immediate' | 'upstream-error' | 'no-response' | 'client-gone' | 'shutdown';

/** The outcome handed to `finish` hooks. */
export interface Outcome {
  readonly kind: OutcomeKind;
  /** HTTP status the client got, when the gateway knows it. */
  readonly status: number | undefined;
  /** True when the end of the response body passed through the gateway. */
  readonly responseComplete: boolean;
}

/** Read-only view of the router exchange of the same request, for attempt stages on the same replica. */
export interface RouterView {
  readonly requestId: string;
  readonly requestHeaders: HeaderView | undefined;
  get<T>(key: Slot<T>): T | undefined;
  /** The request as the router stages left it (edits applied). */
  requestJson(): unknown;
}

/** What a stage sees of an exchange. */
export interface Exchange {
  /** When the ext_proc stream opened (ms, performance clock). */
  readonly startedAt: number;
  /** The filter this stream came from. */
  readonly role: FilterRole;
  /** Envoy's `x-request-id` (generated here if absent). */
  readonly requestId: string;
  readonly requestHeaders: HeaderView | undefined;
  /** The complete request body as Envoy sent it, once received. */
  readonly requestBody: Buffer | undefined;
  readonly responseHeaders: HeaderView | undefined;
  /** `:status` of the upstream response, once its headers arrived. */
  readonly responseStatus: number | undefined;
  /** True when the response is an SSE stream (`text/event-stream`). */
  readonly responseIsEventStream: boolean;
  /** Envoy attributes (CEL expression → value), request and response side merged. */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Envoy dynamic metadata forwarded to us (namespace → plain object). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The upstream host of this attempt (attempt filter only). */
  readonly upstream: UpstreamInfo | undefined;
  /** The router exchange of this request when it lives on this replica (attempt filter only). */
  readonly router: RouterView | undefined;
  /** Set when the request could not be read and was passed through untouched (why, for logs). */
  readonly uninspectable: string | undefined;
  /** Fires when the stream closes (client gone, Envoy done, shutdown): abort slow I/O with it. */
  readonly signal: AbortSignal;
  /** True once the stream closed (what `signal.aborted` says, without making a signal). */
  readonly closed: boolean;
  /** Logger bound to the request id. */
  readonly log: Logger;
  /** True when `level` is logged. */
  logs(level: LogLevel): boolean;

  get<T>(key: Slot<T>): T | undefined;
  set<T>(key: Slot<T>, value: T): void;
  /** A value a router stage carried (`out.carry`) to this attempt, on any replica. */
  carried<T>(key: Carried<T>): T | undefined;

  /**
   * The request body as JSON, parsed once, with the edits of earlier stages applied. Throws a
   * GatewayError (INVALID_REQUEST, UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE) when the body
   * cannot be read; the runner applies `pipeline.onInvalidRequest` to it.
   */
  requestJson(): unknown;
  /**
   * Edits the request JSON: `edit` mutates the value in place or returns a replacement. Stages
   * compose in config order (a stage after `pii` sees the redacted text); the body is
   * serialised once, after the last stage of the phase, with `content-length` set to match.
   */
  editRequest(edit: (json: unknown) => unknown): void;
  /** True when some stage edited the request JSON. */
  readonly requestEdited: boolean;

  /**
   * The SSE events completed by this response chunk, parsed once per chunk however many stages
   * ask (partial events carry over to the next chunk). Empty for a non-SSE response.
   */
  responseEvents(chunk: BodyChunk): readonly SseEvent[];
  /**
   * This chunk's events as they arrived, before any stage's `editResponseEvents` (edits build
   * new event objects; these are never changed). For stages that must see the provider's own
   * words, such as the cache storing an answer before `pii` restored it. Same parse, no copy.
   */
  receivedResponseEvents(chunk: BodyChunk): readonly SseEvent[];
  /**
   * True when no stage has asked for this chunk's events yet and the exchange's SSE parser
   * stands between two events with nothing pending. A reader that recognises the chunk's bytes
   * as one whole event with a single `data` line, and needs nothing else from it, may then read
   * the bytes instead of the events: parsing such a chunk would leave the parser unchanged, so a
   * later `responseEvents` of this or any other chunk is what it would have been.
   */
  responseEventsUnread(chunk: BodyChunk): boolean;
  /**
   * Declares that a stage may rewrite this exchange's SSE events (stages with `rewritesEvents`,
   * before the response body starts: request or response-headers phase). Only then is every SSE
   * chunk re-serialised from its events; any other exchange's answer passes byte for byte, with
   * no serialising on the hot path.
   */
  willEditResponseEvents(): void;
  /** True once some stage declared `willEditResponseEvents()`. */
  readonly editsResponseEvents: boolean;
  /**
   * Rewrites this chunk's events (change the array or return a new one; replace an event with
   * a new object, never change one: `receivedResponseEvents` still holds it). Only for stages
   * that declare `rewritesEvents`, on exchanges they declared with `willEditResponseEvents()`.
   */
  editResponseEvents(chunk: BodyChunk, edit: (events: SseEvent[]) => SseEvent[] | void): void;

  /**
   * Asks Envoy to wait up to `ms` for the answer being prepared (override_message_timeout), for
   * a stage about to do slow I/O. Honoured once per message, within `max_message_timeout`.
   */
  requestMoreTime(ms: number): boolean;
  /** Asks for this exchange's response body (stages with `responseBodyUse: 'on-demand'`). */
  wantResponseBody(): void;
  readonly responseBodyRequested: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CLOSE_REASONS = new Map<string, Error>();
const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;
const NO_EVENTS: readonly SseEvent[] = Object.freeze([]);

/** What asks Envoy for more time on the message being answered (the stream that carries it). */
export interface TimeExtender {
  extendTimeout(ms: number): boolean;
}

type ParsedJson = { value: unknown } | { error: GatewayError };

/** Events parsed for one chunk (memo), and their edited form when a stage rewrote them. */
interface ChunkEvents {
  readonly chunk: BodyChunk;
  readonly events: readonly SseEvent[];
  edited: SseEvent[] | undefined;
}

/** The exchange of one ext_proc stream, as the adapter and the pipeline hold it. */
export class StreamExchange implements Exchange {
  private id: string | undefined;
  private boundLog: Logger | undefined;
  readonly startedAt = performance.now();
  /** Envoy's body modes for this filter, as announced in the first message. */
  protocol: EnvoyProtocol = NO_PROTOCOL;
  attributes: Record<string, unknown> = {};
  private metadataValue: Record<string, unknown> | undefined;
  private metadataSource: (() => Record<string, unknown>) | undefined;

  requestHeaders: HeaderView | undefined;
  requestBody: Buffer | undefined;
  private responseHeaderView: HeaderView | undefined;
  /** Memo of responseIsEventStream (asked on every chunk by several stages). */
  private eventStream: boolean | undefined;
  uninspectable: string | undefined;
  router: RouterView | undefined;
  private upstreamValue: UpstreamInfo | undefined;

  private slots: Map<Slot<unknown>, unknown> | undefined;
  private parsedJson: ParsedJson | undefined;
  private edited = false;
  private responseBodyWanted = false;
  private abort: AbortController | undefined;
  /** One SSE parser per byte source: the main stream's chunks and the observability stream's. */
  private sse: SseParser | undefined;
  private sseObserved: SseParser | undefined;
  private lastEvents: ChunkEvents | undefined;
  private lastObserved: ChunkEvents | undefined;
  private eventEdits = false;
  /** Set by the pipeline when the main stream's first response body chunk runs. */
  responseBodyStarted = false;

  /** The protocol adapter's stream, which asks Envoy for more time; see `requestMoreTime`. */
  timeExtender: TimeExtender | undefined;
  /** The gateway answered with an immediate response (and its status). */
  answeredImmediately = false;
  immediateStatus: number | undefined;
  /** Why the main stream ended (the adapter's view), once it did. */
  closeReason: 'completed' | 'cancelled' | 'error' | 'shutdown' | 'malformed' | undefined;
  /** The end of the response body passed through. */
  responseComplete = false;
  /** How the stream ended, once it did. */
  outcome: Outcome | undefined;

  /**
   * @param logFields fields every line of this exchange carries besides the request id
   *   (e.g. which filter the stream came from)
   */
  constructor(
    private readonly baseLog: Logger,
    private readonly maxInspectBytes: number,
    readonly role: FilterRole = 'router',
    private readonly logFields?: LogFields,
  ) {}

  get metadata(): Record<string, unknown> {
    if (this.metadataSource) {
      this.metadataValue = this.metadataSource();
      this.metadataSource = undefined;
    }
    return this.metadataValue ?? {};
  }

  /** Records where the latest forwarded metadata can be read from (converted on first read). */
  setMetadataSource(read: () => Record<string, unknown>): void {
    this.metadataSource = read;
  }

  get upstream(): UpstreamInfo | undefined {
    if (this.role !== 'attempt') return undefined;
    return (this.upstreamValue ??= upstreamOf(this.attributes));
  }

  get requestId(): string {
    return (this.id ??= this.requestHeaders?.get('x-request-id') || randomUUID());
  }

  get responseStatus(): number | undefined {
    const status = this.responseHeaders?.get(':status');
    return status === undefined ? undefined : Number(status);
  }

  get responseHeaders(): HeaderView | undefined {
    return this.responseHeaderView;
  }

  set responseHeaders(headers: HeaderView | undefined) {
    this.responseHeaderView = headers;
    this.eventStream = undefined;
  }

  get responseIsEventStream(): boolean {
    return (this.eventStream ??= /^text\/event-stream/i.test(this.responseHeaderView?.get('content-type') ?? ''));
  }

  get signal(): AbortSignal {
    return (this.abort ??= new AbortController()).signal;
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Fires `signal` (the stream closed). Cheap when no stage ever asked for it. */
  abortSignal(reason: string): void {
    if (this.abort === undefined) return;
    // One reason object per kind, made once: an Error per stream would capture a stack each time.
    let err = CLOSE_REASONS.get(reason);
    if (err === undefined) CLOSE_REASONS.set(reason, (err = new Error(`stream closed: ${reason}`)));
    this.abort.abort(err);
  }

  logs(level: LogLevel): boolean {
    return this.baseLog.enabled(level);
  }

  get log(): Logger {
    return (this.boundLog ??= this.baseLog.child({ request_id: this.requestId, ...this.logFields }));
  }

  get<T>(key: Slot<T>): T | undefined {
    return this.slots?.get(key) as T | undefined;
  }

  set<T>(key: Slot<T>, value: T): void {
    (this.slots ??= new Map()).set(key, value);
  }

  carried<T>(key: Carried<T>): T | undefined {
    const ns = this.metadata[CARRY_NAMESPACE];
    if (ns === null || typeof ns !== 'object') return undefined;
    return (ns as Record<string, unknown>)[carryKey(key)] as T | undefined;
  }

  requestMoreTime(ms: number): boolean {
    return this.timeExtender?.extendTimeout(ms) ?? false;
  }

  wantResponseBody(): void {
    this.responseBodyWanted = true;
  }

  get responseBodyRequested(): boolean {
    return this.responseBodyWanted;
  }

  requestJson(): unknown {
    if (!this.parsedJson) this.parsedJson = this.parseRequestJson();
    if ('error' in this.parsedJson) throw this.parsedJson.error;
    return this.parsedJson.value;
  }

  editRequest(edit: (json: unknown) => unknown): void {
    const current = this.requestJson();
    const replaced = edit(current);
    if (replaced !== undefined) this.parsedJson = { value: replaced };
    this.edited = true;
  }

  get requestEdited(): boolean {
    return this.edited;
  }

  /** The edited request serialised once (the pipeline calls it after the last stage). */
  serializeEditedRequest(): Buffer {
    return Buffer.from(JSON.stringify(this.requestJson()));
  }

  responseEvents(chunk: BodyChunk): readonly SseEvent[] {
    const memo = chunk.observed ? this.lastObserved : this.lastEvents;
    if (memo && memo.chunk === chunk) return memo.edited ?? memo.events;
    if (!this.responseIsEventStream) return NO_EVENTS;
    const parser = chunk.observed ? (this.sseObserved ??= new SseParser()) : (this.sse ??= new SseParser());
    const events = parser.push(chunk.bytes);
    const all = chunk.endOfStream ? [...events, ...parser.end()] : events;
    const next: ChunkEvents = { chunk, events: all, edited: undefined };
    if (chunk.observed) this.lastObserved = next;
    else this.lastEvents = next;
    return all;
  }

  responseEventsUnread(chunk: BodyChunk): boolean {
    const memo = chunk.observed ? this.lastObserved : this.lastEvents;
    if (memo !== undefined && memo.chunk === chunk) return false;
    const parser = chunk.observed ? this.sseObserved : this.sse;
    return parser !== undefined && parser.atEventBoundary && this.responseIsEventStream;
  }

  receivedResponseEvents(chunk: BodyChunk): readonly SseEvent[] {
    const events = this.responseEvents(chunk);
    const memo = chunk.observed ? this.lastObserved : this.lastEvents;
    return memo && memo.chunk === chunk ? memo.events : events;
  }

  willEditResponseEvents(): void {
    // Chunks already passed as bytes may have ended inside an event; re-serialising from there
    // would repeat that event's head. So the choice is made once, before the body.
    if (this.responseBodyStarted && !this.eventEdits) throw new Error('willEditResponseEvents() after the response body started');
    this.eventEdits = true;
  }

  get editsResponseEvents(): boolean {
    return this.eventEdits;
  }

  editResponseEvents(chunk: BodyChunk, edit: (events: SseEvent[]) => SseEvent[] | void): void {
    if (!this.eventEdits) throw new Error('editResponseEvents() without willEditResponseEvents()');
    this.responseEvents(chunk);
    const memo = chunk.observed ? this.lastObserved : this.lastEvents;
    if (!memo || memo.chunk !== chunk) return; // not an SSE response: nothing to rewrite
    const working = memo.edited ?? [...memo.events];
    memo.edited = edit(working) ?? working;
  }

  /** This chunk re-serialised from its (possibly edited) events, for rewriting pipelines. */
  serializeEvents(chunk: BodyChunk): Buffer {
    const events = this.responseEvents(chunk);
    if (events.length === 0) return EMPTY;
    let text = '';
    for (const e of events) text += formatSseEvent(eventFields(e));
    return Buffer.from(text);
  }

  private parseRequestJson(): ParsedJson {
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

const EMPTY = Buffer.alloc(0);

function eventFields(e: SseEvent): { event?: string; data: string; id?: string } {
  const out: { event?: string; data: string; id?: string } = { data: e.data };
  if (e.event !== undefined) out.event = e.event;
  if (e.id !== undefined) out.id = e.id;
  return out;
}

/** CEL attribute names the attempt filter asks for (envoy/envoy.yaml, `request_attributes`). */
export const UPSTREAM_ATTRIBUTES = {
  hostMetadata: "xds.upstream_host_metadata.filter_metadata['ai_gateway']",
  provider: "xds.upstream_host_metadata.filter_metadata['ai_gateway']['provider']",
  clusterName: 'xds.cluster_name',
  routeName: 'xds.route_name',
} as const;

/**
 * Typed view of the attempt filter's attributes. Envoy keys each value by the exact CEL
 * expression (envoy-ext-proc-facts.md §2.10); a whole `filter_metadata['ai_gateway']` struct
 * and single keys of it are both understood.
 */
function upstreamOf(attributes: Record<string, unknown>): UpstreamInfo {
  const hostMetadata: Record<string, unknown> = {};
  const whole = attributes[UPSTREAM_ATTRIBUTES.hostMetadata];
  if (whole !== null && typeof whole === 'object') Object.assign(hostMetadata, whole);
  const prefix = `${UPSTREAM_ATTRIBUTES.hostMetadata}['`;
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith(prefix) && name.endsWith("']")) hostMetadata[name.slice(prefix.length, -2)] = value;
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    hostMetadata,
    clusterName: str(attributes[UPSTREAM_ATTRIBUTES.clusterName]),
    routeName: str(attributes[UPSTREAM_ATTRIBUTES.routeName]),
  };
}
