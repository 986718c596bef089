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

/** Mutations collected from the stages of one phase, for one message. */
export class PhaseOutput {
  /** Headers to set (overwrite), lower-case name → value. */
  readonly setHeaders = new Map<string, string>();
  /** Headers to remove. */
  readonly removeHeaders = new Set<string>();
  /** Replacement body for this message: bytes, or `null` to clear it; undefined leaves it. */
  body: Buffer | null | undefined = undefined;
  /** Ask Envoy to re-match the route (only honoured on request-path responses with a header mutation). */
  clearRouteCache = false;
  /** Namespaced dynamic metadata for Envoy (namespace → key → value). */
  readonly metadata = new Map<string, Record<string, MetadataValue>>();
  /** Set by `respond`; ends the phase and the exchange. */
  reply: ImmediateReply | undefined = undefined;
  /** Set by `fail`; rendered in the client's dialect by the pipeline, then ends like `respond`. */
  error: ClientError | undefined = undefined;

  setHeader(name: string, value: string): void {
    const key = name.toLowerCase();
    this.removeHeaders.delete(key);
    this.setHeaders.set(key, value);
  }

  removeHeader(name: string): void {
    const key = name.toLowerCase();
    this.setHeaders.delete(key);
    this.removeHeaders.add(key);
  }

  replaceBody(body: Buffer | string): void {
    this.body = typeof body === 'string' ? Buffer.from(body) : body;
  }

  clearBody(): void {
    this.body = null;
  }

  setMetadata(namespace: string, key: string, value: MetadataValue): void {
    let ns = this.metadata.get(namespace);
    if (!ns) this.metadata.set(namespace, (ns = {}));
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
    this.setHeaders.clear();
    this.removeHeaders.clear();
    this.body = undefined;
    this.clearRouteCache = false;
    this.metadata.clear();
    this.reply = undefined;
    this.error = undefined;
  }

  /** A copy of the decisions so far (the pipeline continues on it when a stage timed out). */
  clone(): PhaseOutput {
    const o = new PhaseOutput();
    for (const [k, v] of this.setHeaders) o.setHeaders.set(k, v);
    for (const k of this.removeHeaders) o.removeHeaders.add(k);
    o.body = this.body;
    o.clearRouteCache = this.clearRouteCache;
    for (const [ns, v] of this.metadata) o.metadata.set(ns, { ...v });
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
