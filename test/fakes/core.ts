// Shared core of the fake LLM providers: the node:http server, the per-test script of
// behaviours, request/response recording, and the chunk-by-chunk response writer that
// implements delays, holds, resets and truncated streams. Provider modules only turn a request
// into a ResponsePlan (status, headers, body chunks) in their own wire format.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type ProviderKind = 'openai' | 'anthropic' | 'mistral' | 'embeddings';

/** A provider-shaped error response (or in-stream error event). */
export interface ErrorSpec {
  /** HTTP status, e.g. 429, 500, 502, 503, 504, 529. */
  status: number;
  /** Provider error type (OpenAI `error.type`, Anthropic `error.type`, Mistral `type`). Defaults per status. */
  type?: string;
  /** Error message. Defaults to the provider's usual wording for the status. */
  message?: string;
  /** OpenAI / Mistral `code`. Defaults per status. */
  code?: string | null;
  /** OpenAI / Mistral `param`. Default null. */
  param?: string | null;
  /** `retry-after` header, in seconds. Defaults to 1 for 429; otherwise sent only when set. */
  retryAfter?: number | string;
}

/**
 * What the fake does for one request. Every field is optional and they combine, e.g.
 * `{ delayMs: 200, error: { status: 503 } }` or `{ holdAfterChunks: 1, chunkDelayMs: 5 }`.
 *
 * "Chunks" are the separate writes of the response body: one SSE frame each for a stream. A
 * non-streamed body is one chunk, but is written as two halves when a `*AfterChunks` fault
 * applies to it, so `resetAfterChunks: 1` cuts a JSON body in the middle.
 */
export interface Behaviour {
  /** Free-form name, kept in the response record (handy in assertion messages). */
  label?: string;

  // ---- timing ----
  /** Wait this long before sending the status line and headers (slow first byte). */
  delayMs?: number;
  /** After the headers, wait this long before the first body chunk. */
  firstChunkDelayMs?: number;
  /** Wait this long between body chunks (streams). */
  chunkDelayMs?: number;
  /** Write this many body chunks, then wait until the test calls `release()`. */
  holdAfterChunks?: number;

  // ---- faults ----
  /** Answer with the provider's error body for this status (e.g. 429 + retry-after, 529 overloaded). */
  error?: ErrorSpec;
  /** Drop the connection: 'before-headers' (TCP reset, no response at all) or 'after-headers' (headers, then close). */
  reset?: 'before-headers' | 'after-headers';
  /** Write this many body chunks, then drop the connection (no clean end of the HTTP body). */
  resetAfterChunks?: number;
  /** Write this many body chunks, then end the HTTP response cleanly: a stream that stops mid-answer. */
  stopAfterChunks?: number;
  /** After `afterChunks` chunks, send the provider's in-stream error event and end the stream. */
  streamError?: ErrorSpec & { afterChunks: number };

  // ---- answer content (normal responses) ----
  /** Reply text instead of the default. */
  text?: string;
  /** Finish reason in the provider's vocabulary (`stop`/`length` or `end_turn`/`max_tokens`...). */
  finishReason?: string;
  /** Model name reported in the response. */
  model?: string;
  /** Override the reported token counts. */
  usage?: { inputTokens?: number; outputTokens?: number };

  // ---- raw overrides ----
  /** Status code (applies to any response, e.g. a 200 carrying an error body). */
  status?: number;
  /** Extra / replacing response headers. */
  headers?: Record<string, string>;
  /** Replace the content-type header (e.g. 'text/html' for a wrong content type). */
  contentType?: string;
  /** Replace the body entirely (objects are JSON-encoded). Default content type: application/json. */
  body?: string | Uint8Array | object;
  /** Replace the body with these separate writes (e.g. hand-made SSE frames). Default content type: text/event-stream. */
  chunks?: ReadonlyArray<string | Uint8Array>;
  /** Skip the credential check for this request. */
  skipAuth?: boolean;
}

export interface AuthOptions {
  /** Reject requests with no credential (401), as the real APIs do. Default true. */
  required?: boolean;
  /** When set, reject any other credential (401 "invalid api key"). */
  apiKey?: string | readonly string[];
  /** Anthropic only: require the `anthropic-version` header (400 otherwise). Default true. */
  requireVersion?: boolean;
}

export interface EmbeddingOptions {
  /** Vector length when the request has no `dimensions`. Default 1536. */
  dimensions?: number;
  /**
   * 'bag-of-words' (default): sum of hash-seeded vectors of the lower-cased words, normalised:
   * equal texts give equal vectors, texts sharing words are close, unrelated texts ~orthogonal.
   * 'hash': one hash-seeded vector per whole text (only equal texts are similar).
   */
  mode?: 'bag-of-words' | 'hash';
  /** Full override: return the vector for a text (it is normalised by the fake). */
  embed?: (text: string, dimensions: number) => number[];
}

export interface ReplyContext {
  kind: ProviderKind;
  /** Parsed JSON request body. */
  body: Record<string, unknown>;
  /** Text of the last user message. */
  lastUserText: string;
  /** Index of the request on this fake (0-based). */
  index: number;
}

export interface FakeProviderOptions {
  kind: ProviderKind;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on. Default 0 (an ephemeral port). */
  port?: number;
  /** Credential check; `false` turns it off. Default `{ required: true }`. */
  auth?: AuthOptions | false;
  /** Reply text (or function of the request) instead of the default "This is a fake <kind> reply to: <last user text>". */
  reply?: string | ((ctx: ReplyContext) => string);
  /** Model name to report instead of echoing the request's model. */
  model?: string;
  /** Embedding vectors (kind 'embeddings', and /v1/embeddings on 'openai' and 'mistral'). */
  embeddings?: EmbeddingOptions;
  /** Behaviour for requests when the script is empty. Default: a normal answer. */
  defaultBehaviour?: Behaviour;
  /** Seed for response ids. Default: the kind. */
  seed?: string;
  /** Clock in ms (for `created` timestamps). Default Date.now. */
  clock?: () => number;
}

export interface RecordedRequest {
  /** 0-based position among the requests this fake received (same index as its response). */
  readonly index: number;
  readonly method: string;
  /** Path without query string. */
  readonly path: string;
  /** Request target as received (path and query). */
  readonly url: string;
  /** Lower-cased header names. */
  readonly headers: IncomingHttpHeaders;
  /** Headers as received, name/value alternating, original case. */
  readonly rawHeaders: readonly string[];
  /** The raw body bytes. */
  readonly body: Buffer;
  /** Body decoded as UTF-8. */
  readonly text: string;
  /** Body parsed as JSON; undefined when it is not JSON. */
  readonly json: unknown;
  /** Clock time (ms) when the whole body had arrived. */
  readonly receivedAt: number;
}

export type ResponseOutcome = 'pending' | 'complete' | 'stopped' | 'reset' | 'client-closed';

export class RecordedResponse {
  /** Status sent (0 while none was sent, or when the connection was reset before headers). */
  status = 0;
  /** Headers sent, lower-cased names. */
  headers: Record<string, string> = {};
  /** Body bytes exactly as written, one entry per write. */
  readonly chunks: Buffer[] = [];
  /** Clock times (ms) of each chunk write. */
  readonly chunkTimes: number[] = [];
  outcome: ResponseOutcome = 'pending';
  /** True while the response waits for `release()`. */
  held = false;
  headersAt: number | undefined;
  endedAt: number | undefined;

  constructor(
    readonly index: number,
    readonly behaviour: Behaviour | undefined,
  ) {}

  /** All body bytes written, concatenated. */
  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.body.toString('utf8');
  }

  /** Body parsed as JSON (undefined if not JSON). */
  get json(): unknown {
    try {
      return JSON.parse(this.text);
    } catch {
      return undefined;
    }
  }
}

/** What a provider module decides to send; the core writes it. */
export interface ResponsePlan {
  status: number;
  headers: Record<string, string>;
  chunks: Buffer[];
  /** True for SSE streams (each chunk a frame); false for a single body. */
  streaming: boolean;
}

export interface HandlerContext {
  readonly kind: ProviderKind;
  readonly request: RecordedRequest;
  readonly behaviour: Behaviour;
  readonly options: FakeProviderOptions;
  /** Seed for this response's ids: `${seed}:${index}`. */
  readonly idSeed: string;
  /** Clock in ms. */
  readonly now: number;
}

/** One wire format. */
export interface Dialect {
  readonly kind: ProviderKind;
  /** A normal request: credential check, routing, validation, answer. */
  handle(ctx: HandlerContext): ResponsePlan;
  /** A provider-shaped error response. */
  error(spec: ErrorSpec, ctx: HandlerContext): ResponsePlan;
  /** A provider-shaped in-stream error frame. */
  streamErrorFrame(spec: ErrorSpec, ctx: HandlerContext): string;
}

export function jsonPlan(status: number, body: unknown, headers: Record<string, string> = {}): ResponsePlan {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    chunks: [Buffer.from(JSON.stringify(body), 'utf8')],
    streaming: false,
  };
}

export function ssePlan(frames: readonly string[], headers: Record<string, string> = {}): ResponsePlan {
  return {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers },
    chunks: frames.map((f) => Buffer.from(f, 'utf8')),
    streaming: true,
  };
}

/** A plain JSON object (not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Pending releases and held responses. */
class Gate {
  private tokens = 0;
  private waiters: Array<() => void> = [];
  private holdListeners: Array<(r: RecordedResponse) => void> = [];
  private heldNow = new Set<RecordedResponse>();

  /** Resolves when released (or immediately when a release was banked). */
  wait(r: RecordedResponse): Promise<void> {
    if (this.tokens > 0) {
      this.tokens--;
      return Promise.resolve();
    }
    this.heldNow.add(r);
    const listeners = this.holdListeners;
    this.holdListeners = [];
    for (const l of listeners) l(r);
    return new Promise<void>((resolve) => {
      this.waiters.push(() => {
        this.heldNow.delete(r);
        resolve();
      });
    });
  }

  release(): void {
    if (this.waiters.length === 0) {
      this.tokens++;
      return;
    }
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Resolve every waiter and forget banked releases. */
  drain(): void {
    this.tokens = 0;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  nextHold(): Promise<RecordedResponse> {
    const first = this.heldNow.values().next();
    if (!first.done) return Promise.resolve(first.value);
    return new Promise((resolve) => this.holdListeners.push(resolve));
  }
}

function sleep(ms: number, abort: Promise<void>): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    void abort.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

function toBuffer(x: string | Uint8Array): Buffer {
  return typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x);
}

export interface FakeProvider {
  readonly kind: ProviderKind;
  /** Base URL, e.g. http://127.0.0.1:40123 (no trailing slash, no /v1). */
  readonly url: string;
  readonly port: number;
  /** Every request received, in arrival order (live array). */
  readonly requests: RecordedRequest[];
  /** The response to each request, same index (live array; records fill in as bytes are written). */
  readonly responses: RecordedResponse[];
  /** Queue behaviours for the next requests, one per request, in order. */
  script(...behaviours: Behaviour[]): FakeProvider;
  /** Behaviour once the script is empty (undefined: normal answers). */
  setDefault(behaviour: Behaviour | undefined): FakeProvider;
  /** Number of scripted behaviours not yet used. */
  pendingScript(): number;
  /** Let held responses go on (`holdAfterChunks`). If none is held, the next hold passes straight through. */
  release(): void;
  /** Resolves with the response when one is held (immediately if one is held now). */
  waitForHold(): Promise<RecordedResponse>;
  /** Resolves once `count` requests have arrived in total. */
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Resolves when no response is in progress. */
  idle(): Promise<void>;
  /** Clear records, script, default behaviour and banked releases (held responses are released). */
  reset(): void;
  /** Stop listening and drop all connections. */
  close(): Promise<void>;
}

export async function startServer(dialect: Dialect, options: FakeProviderOptions): Promise<FakeProvider> {
  const requests: RecordedRequest[] = [];
  const responses: RecordedResponse[] = [];
  const queue: Behaviour[] = [];
  let defaultBehaviour: Behaviour | undefined = options.defaultBehaviour;
  const gate = new Gate();
  const inFlight = new Set<Promise<void>>();
  const requestWaiters: Array<() => void> = [];
  const clock = options.clock ?? Date.now;
  const seed = options.seed ?? options.kind;
  let closed = false;

  const server: Server = createServer((req, res) => {
    const p = serve(req, res).catch((err: unknown) => {
      // A bug in a fake should be loud, but must not crash the test process.
      console.error('[fake-provider] handler error', err);
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else res.destroy();
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  });
  server.on('connection', (socket: Socket) => socket.setNoDelay(true));

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    const text = body.toString('utf8');
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const rawUrl = req.url ?? '/';
    const qi = rawUrl.indexOf('?');
    const index = requests.length;
    const request: RecordedRequest = {
      index,
      method: req.method ?? 'GET',
      path: qi === -1 ? rawUrl : rawUrl.slice(0, qi),
      url: rawUrl,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body,
      text,
      json,
      receivedAt: clock(),
    };
    const behaviour = queue.length > 0 ? queue.shift() : defaultBehaviour;
    const record = new RecordedResponse(index, behaviour);
    requests.push(request);
    responses.push(record);
    for (const w of requestWaiters.splice(0)) w();

    const b: Behaviour = behaviour ?? {};
    const ctx: HandlerContext = {
      kind: options.kind,
      request,
      behaviour: b,
      options,
      idSeed: `${seed}:${index}`,
      now: clock(),
    };

    let plan: ResponsePlan;
    if (b.error) plan = dialect.error(b.error, ctx);
    else if (b.body !== undefined || b.chunks !== undefined) plan = customPlan(b);
    else plan = dialect.handle(ctx);
    if (b.status !== undefined) plan.status = b.status;
    if (b.headers) for (const [k, v] of Object.entries(b.headers)) plan.headers[k.toLowerCase()] = v;
    if (b.contentType !== undefined) plan.headers['content-type'] = b.contentType;

    await write(res, plan, b, record, ctx);
  }

  function customPlan(b: Behaviour): ResponsePlan {
    if (b.chunks !== undefined) {
      return {
        status: 200,
        headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
        chunks: b.chunks.map(toBuffer),
        streaming: true,
      };
    }
    const body = b.body;
    const buf =
      typeof body === 'string' || body instanceof Uint8Array ? toBuffer(body) : Buffer.from(JSON.stringify(body), 'utf8');
    return { status: 200, headers: { 'content-type': 'application/json' }, chunks: [buf], streaming: false };
  }

  async function write(
    res: ServerResponse,
    plan: ResponsePlan,
    b: Behaviour,
    record: RecordedResponse,
    ctx: HandlerContext,
  ): Promise<void> {
    let ended = false;
    let signalAbort!: () => void;
    const aborted = new Promise<void>((resolve) => (signalAbort = resolve));
    let clientGone = false;
    res.on('close', () => {
      if (!ended) {
        clientGone = true;
        if (record.outcome === 'pending') record.outcome = 'client-closed';
        record.endedAt ??= clock();
        signalAbort();
      }
    });
    const socket = res.socket;

    const cutPoints = [b.resetAfterChunks, b.stopAfterChunks, b.holdAfterChunks, b.streamError?.afterChunks];
    let chunks = plan.chunks;
    if (!plan.streaming && chunks.length === 1 && cutPoints.some((n) => n !== undefined && n > 0 && n < 2)) {
      const whole = chunks[0]!;
      const half = Math.floor(whole.length / 2);
      chunks = [whole.subarray(0, half), whole.subarray(half)];
    }

    const finish = (outcome: ResponseOutcome): void => {
      ended = true;
      record.outcome = outcome;
      record.endedAt = clock();
    };
    const dropConnection = async (): Promise<void> => {
      ended = true;
      // Flush what was written, then close without finishing the HTTP message.
      await new Promise<void>((resolve) => {
        if (!socket || socket.destroyed) return resolve();
        socket.end(() => resolve());
        setTimeout(resolve, 200).unref();
      });
      socket?.destroy();
      finish('reset');
    };

    if (b.delayMs) await sleep(b.delayMs, aborted);
    if (clientGone) return;

    if (b.reset === 'before-headers') {
      ended = true;
      if (socket && !socket.destroyed) socket.resetAndDestroy();
      finish('reset');
      return;
    }

    const headers: Record<string, string> = { ...plan.headers };
    const mayCut = cutPoints.some((n) => n !== undefined) || b.reset !== undefined;
    if (!plan.streaming && !mayCut) {
      headers['content-length'] = String(chunks.reduce((a, c) => a + c.length, 0));
    }
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    record.headers = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    res.writeHead(plan.status);
    res.flushHeaders();
    record.status = plan.status;
    record.headersAt = clock();

    if (b.reset === 'after-headers') {
      await dropConnection();
      return;
    }

    for (let i = 0; i <= chunks.length; i++) {
      if (b.holdAfterChunks === i) {
        record.held = true;
        await Promise.race([gate.wait(record), aborted]);
        record.held = false;
      }
      if (clientGone) return;
      if (b.stopAfterChunks === i) {
        res.end();
        finish('stopped');
        return;
      }
      if (b.resetAfterChunks === i) {
        await dropConnection();
        return;
      }
      if (b.streamError && b.streamError.afterChunks === i) {
        const frame = Buffer.from(dialect.streamErrorFrame(b.streamError, ctx), 'utf8');
        record.chunks.push(frame);
        record.chunkTimes.push(clock());
        res.end(frame);
        finish('stopped');
        return;
      }
      if (i === chunks.length) break;
      const delay = i === 0 ? b.firstChunkDelayMs : b.chunkDelayMs;
      if (delay) await sleep(delay, aborted);
      if (clientGone) return;
      const chunk = chunks[i]!;
      record.chunks.push(chunk);
      record.chunkTimes.push(clock());
      res.write(chunk);
    }
    res.end();
    finish('complete');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;

  const provider: FakeProvider = {
    kind: options.kind,
    url: `http://${urlHost}:${port}`,
    port,
    requests,
    responses,
    script(...behaviours) {
      for (const b of behaviours) {
        if (b.body !== undefined && b.chunks !== undefined) throw new Error('behaviour: give body or chunks, not both');
      }
      queue.push(...behaviours);
      return provider;
    },
    setDefault(b) {
      defaultBehaviour = b;
      return provider;
    },
    pendingScript: () => queue.length,
    release: () => gate.release(),
    waitForHold: () => gate.nextHold(),
    waitForRequests(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (requests.length >= count) {
            clearTimeout(timer);
            resolve(requests.slice());
            return true;
          }
          return false;
        };
        const timer = setTimeout(
          () => reject(new Error(`fake ${options.kind}: ${requests.length}/${count} requests after ${timeoutMs} ms`)),
          timeoutMs,
        );
        if (check()) return;
        const waiter = (): void => {
          if (!check()) requestWaiters.push(waiter);
        };
        requestWaiters.push(waiter);
      });
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    reset() {
      requests.length = 0;
      responses.length = 0;
      queue.length = 0;
      defaultBehaviour = options.defaultBehaviour;
      gate.drain();
    },
    async close() {
      if (closed) return;
      closed = true;
      gate.drain();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
    },
  };
  return provider;
}

export type ParsedBody = { ok: true; body: Record<string, unknown> } | { ok: false; plan: ResponsePlan };

/** The request body as a JSON object, or the provider's 400 when it is not one. */
export function parseJsonBody(
  ctx: HandlerContext,
  error: (spec: ErrorSpec) => ResponsePlan,
  message = 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)',
): ParsedBody {
  const json = ctx.request.json;
  if (isObject(json)) return { ok: true, body: json };
  return { ok: false, plan: error({ status: 400, type: 'invalid_request_error', message }) };
}

/** The credential check configured for this fake, applied to `presented` (undefined: none sent). */
export function checkCredential(ctx: HandlerContext, presented: string | undefined): 'ok' | 'missing' | 'invalid' {
  const auth = ctx.options.auth;
  if (auth === false || ctx.behaviour.skipAuth) return 'ok';
  const required = auth?.required ?? true;
  if (presented === undefined || presented === '') return required ? 'missing' : 'ok';
  const keys = auth?.apiKey;
  if (keys === undefined) return 'ok';
  const list = typeof keys === 'string' ? [keys] : keys;
  return list.includes(presented) ? 'ok' : 'invalid';
}

/** A header's single value (first one if repeated). */
export function header(ctx: HandlerContext, name: string): string | undefined {
  const v = ctx.request.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Bearer token from the authorization header. */
export function bearer(ctx: HandlerContext): string | undefined {
  const v = header(ctx, 'authorization');
  if (v === undefined) return undefined;
  const m = /^Bearer\s+(.*)$/i.exec(v.trim());
  return m ? m[1]!.trim() : undefined;
}
