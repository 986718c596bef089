/**
 * @module pipeline/output
 * What the stages of one phase decide for one Envoy message: header sets and removals, a body
 * replacement, a route refresh, dynamic metadata, or an immediate answer. The protocol adapter
 * turns it into exactly one ProcessingResponse.
 */
import type { ClientError, ClientErrorOptions, ErrorCode } from './errors.js';
import { CARRY_NAMESPACE, carryKey, type Carried } from './carry.js';

/** A response the gateway sends instead of forwarding the request (Envoy's ImmediateResponse). */
export interface ImmediateReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** Short machine-readable reason; Envoy puts it in %RESPONSE_CODE_DETAILS%. */
  readonly details?: string;
}

/** JSON-compatible value for dynamic metadata. */
export type MetadataValue = string | number | boolean | null | MetadataValue[] | { [key: string]: MetadataValue };

const NO_HEADERS: ReadonlyMap<string, string> = new Map();
const NO_REMOVALS: ReadonlySet<string> = new Set();
const NO_METADATA: ReadonlyMap<string, Record<string, MetadataValue>> = new Map();

/**
 * Mutations collected from the stages of one phase, for one message. One per Envoy message
 * (53 for a 50-chunk stream), and most stay empty: the collections are made on first write.
 */
export class PhaseOutput {
  private headersToSet: Map<string, string> | undefined = undefined;
  private headersToRemove: Set<string> | undefined = undefined;
  private namespaces: Map<string, Record<string, MetadataValue>> | undefined = undefined;
  /** Replacement body for this message: bytes, or `null` to clear it; undefined leaves it. */
  body: Buffer | null | undefined = undefined;
  /** Ask Envoy to re-match the route (only honoured on request-path responses with a header mutation). */
  clearRouteCache = false;
  /** Set by `respond`; ends the phase and the exchange. */
  reply: ImmediateReply | undefined = undefined;
  /** Set by `fail`; rendered in the client's dialect by the pipeline, then ends like `respond`. */
  error: ClientError | undefined = undefined;

  /** Headers to set (overwrite), lower-case name → value. */
  get setHeaders(): ReadonlyMap<string, string> {
    return this.headersToSet ?? NO_HEADERS;
  }

  /** Headers to remove. */
  get removeHeaders(): ReadonlySet<string> {
    return this.headersToRemove ?? NO_REMOVALS;
  }

  /** Namespaced dynamic metadata for Envoy (namespace → key → value). */
  get metadata(): ReadonlyMap<string, Record<string, MetadataValue>> {
    return this.namespaces ?? NO_METADATA;
  }

  setHeader(name: string, value: string): void {
    const key = name.toLowerCase();
    this.headersToRemove?.delete(key);
    (this.headersToSet ??= new Map()).set(key, value);
  }

  removeHeader(name: string): void {
    const key = name.toLowerCase();
    this.headersToSet?.delete(key);
    (this.headersToRemove ??= new Set()).add(key);
  }

  /** Drops every header set and removal decided so far. */
  clearHeaderMutations(): void {
    this.headersToSet = undefined;
    this.headersToRemove = undefined;
  }

  replaceBody(body: Buffer | string): void {
    this.body = typeof body === 'string' ? Buffer.from(body) : body;
  }

  clearBody(): void {
    this.body = null;
  }

  setMetadata(namespace: string, key: string, value: MetadataValue): void {
    const namespaces = (this.namespaces ??= new Map());
    let ns = namespaces.get(namespace);
    if (!ns) namespaces.set(namespace, (ns = {}));
    ns[key] = value;
  }

  /**
   * Hands a value to the per-attempt stages of this request (see `carry.ts`): as `ai_gateway`
   * dynamic metadata, which Envoy forwards to the upstream filter on whichever replica it runs.
   */
  carry<T extends MetadataValue>(key: Carried<T>, value: T): void {
    this.setMetadata(CARRY_NAMESPACE, carryKey(key), value);
  }

  /** Answer at once; later stages of the phase do not run. */
  respond(reply: ImmediateReply): void {
    this.reply = reply;
  }

  /**
   * Answer at once with a catalogue error, rendered in the client's own API shape (OpenAI or
   * Anthropic error JSON). How a stage answers an expected condition (limit hit, no identity,
   * unknown model); only bugs throw.
   */
  fail(code: ErrorCode, message: string, options: ClientErrorOptions = {}): void {
    this.error = { code, message, ...options };
  }

  /** True once `respond` or `fail` decided an immediate answer. */
  get answered(): boolean {
    return this.reply !== undefined || this.error !== undefined;
  }

  /** Forgets every decision (the message continues unchanged). */
  reset(): void {
    this.clearHeaderMutations();
    this.body = undefined;
    this.clearRouteCache = false;
    this.namespaces = undefined;
    this.reply = undefined;
    this.error = undefined;
  }

  /** A copy of the decisions so far (the pipeline continues on it when a stage timed out). */
  clone(): PhaseOutput {
    const o = new PhaseOutput();
    if (this.headersToSet) o.headersToSet = new Map(this.headersToSet);
    if (this.headersToRemove) o.headersToRemove = new Set(this.headersToRemove);
    o.body = this.body;
    o.clearRouteCache = this.clearRouteCache;
    if (this.namespaces) o.namespaces = new Map([...this.namespaces].map(([ns, v]) => [ns, { ...v }]));
    o.reply = this.reply;
    o.error = this.error;
    return o;
  }

  /** True when nothing was decided: the adapter sends a plain CONTINUE. */
  get isEmpty(): boolean {
    return (
      this.reply === undefined &&
      this.error === undefined &&
      this.body === undefined &&
      this.setHeaders.size === 0 &&
      this.removeHeaders.size === 0 &&
      this.metadata.size === 0 &&
      !this.clearRouteCache
    );
  }
}
