// A gRPC client of ExternalProcessor/Process that behaves like Envoy's ext_proc filter for one
// HTTP request per stream (facts doc §1–2, §7):
//   request_headers (+ protocol_config) → wait → [request_body, BUFFERED, one message] → wait →
//   [response_headers] → wait → [response_body: one message if BUFFERED, N pipelined chunks if
//   STREAMED] → wait for all → half-close + cancel.
// Each message is sent only if the effective processing mode says so; with allowModeOverride the
// mode_override on a *headers* response is applied like Envoy's effectiveModeOverride (header
// modes DEFAULT = keep configured, body modes taken literally).
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  PROCESS_PATH,
  type BodySendMode,
  type ExtProcDefinitions,
  type HeaderSendMode,
  type PhaseName,
  type ProcessingModeMsg,
  type ProcessingRequestMsg,
  type ProcessingResponseMsg,
} from './ext-proc-proto.js';
import { chatRequestBody, requestHeaders, responseHeaders, sseChunks } from './fixtures.js';

/** The filter's configured processing mode (ExternalProcessor.processing_mode), all fields explicit. */
export interface FullMode {
  request_header_mode: 'SEND' | 'SKIP';
  response_header_mode: 'SEND' | 'SKIP';
  request_body_mode: BodySendMode;
  response_body_mode: BodySendMode;
}

export interface DriverVariant {
  key: string;
  title: string;
  allowModeOverride: boolean;
  mode: FullMode;
}

export const VARIANTS: Record<'a' | 'b', DriverVariant> = {
  a: {
    key: 'a',
    title: 'allow_mode_override: true, BUFFERED/BUFFERED (shipped envoy.yaml)',
    allowModeOverride: true,
    mode: {
      request_header_mode: 'SEND',
      response_header_mode: 'SEND',
      request_body_mode: 'BUFFERED',
      response_body_mode: 'BUFFERED',
    },
  },
  b: {
    key: 'b',
    title: 'allow_mode_override: false, SEND/BUFFERED, response body STREAMED (every message)',
    allowModeOverride: false,
    mode: {
      request_header_mode: 'SEND',
      response_header_mode: 'SEND',
      request_body_mode: 'BUFFERED',
      response_body_mode: 'STREAMED',
    },
  },
};

/** Envoy's effectiveModeOverride: DEFAULT header modes keep the configured value; body modes literal. */
export function applyModeOverride(configured: FullMode, current: FullMode, o: ProcessingModeMsg): FullMode {
  const hdr = (v: HeaderSendMode | undefined, cfg: 'SEND' | 'SKIP'): 'SEND' | 'SKIP' =>
    v === undefined || v === 'DEFAULT' ? cfg : v;
  return {
    request_header_mode: current.request_header_mode, // ignored in overrides
    response_header_mode: hdr(o.response_header_mode, configured.response_header_mode),
    request_body_mode: o.request_body_mode ?? 'NONE',
    response_body_mode: o.response_body_mode ?? 'NONE',
  };
}

/** Per-variant, pre-encoded traffic (everything but request_headers is identical per request). */
export interface DriverContext {
  variant: DriverVariant;
  defs: ExtProcDefinitions;
  chunks: number;
  messageTimeoutMs: number;
  requestBodyBytes: number;
  responseBodyBytes: number;
  encodeRequestHeaders(requestId: string): Buffer;
  requestBodyMsg: Buffer;
  responseHeadersMsg: Buffer;
  responseBodyBufferedMsg: Buffer;
  responseChunkMsgs: Buffer[];
}

export function makeDriverContext(
  defs: ExtProcDefinitions,
  variant: DriverVariant,
  chunks: number,
  messageTimeoutMs = 200,
): DriverContext {
  const ser = (m: ProcessingRequestMsg): Buffer => defs.process.requestSerialize(m);
  const body = chatRequestBody();
  const sse = sseChunks(chunks);
  const sseAll = Buffer.concat(sse);
  return {
    variant,
    defs,
    chunks: sse.length,
    messageTimeoutMs,
    requestBodyBytes: body.length,
    responseBodyBytes: sseAll.length,
    encodeRequestHeaders: (requestId) =>
      ser({
        request_headers: {
          headers: { headers: requestHeaders(requestId, body.length) },
          end_of_stream: false,
        },
        protocol_config: {
          request_body_mode: variant.mode.request_body_mode,
          response_body_mode: variant.mode.response_body_mode,
        },
      }),
    requestBodyMsg: ser({ request_body: { body, end_of_stream: true } }),
    responseHeadersMsg: ser({
      response_headers: { headers: { headers: responseHeaders() }, end_of_stream: false },
    }),
    responseBodyBufferedMsg: ser({ response_body: { body: sseAll, end_of_stream: true } }),
    responseChunkMsgs: sse.map((c, i) =>
      ser({ response_body: { body: c, end_of_stream: i === sse.length - 1 } }),
    ),
  };
}

/**
 * ok: all expected responses; immediate: immediate_response; closed: server ended the stream with
 * OK early (Envoy continues without ext_proc); goaway: the HTTP/2 connection was torn down under
 * the stream (see CloseMode); error: anything else (gRPC error, spurious message).
 */
export type Outcome = 'ok' | 'immediate' | 'closed' | 'goaway' | 'error';

/**
 * How the driver ends a stream after the last expected response.
 *  - reset: Envoy's close(): half-close, then RST_STREAM (grpc-js cancel) right away.
 *  - graceful: half-close, then wait for the server's status (no RST_STREAM). Not what Envoy does;
 *    useful to take nghttp2's RST_STREAM rate limit out of the measurement.
 */
export type CloseMode = 'reset' | 'graceful';

export interface RequestResult {
  outcome: Outcome;
  /** ProcessingRequest messages sent on the stream. */
  messages: number;
  /** Longest wait for a response to a batch of messages (ms); > message_timeout would be a 504. */
  maxWaitMs: number;
  /** Stream open → last expected response (ms). */
  latencyMs: number;
  error?: string;
}

const identity = (b: Buffer): Buffer => b;

/**
 * End of a stream before the normal end. Deliberately not an Error: capturing a stack per request
 * would be measurable driver overhead.
 */
class Finished {
  constructor(
    readonly outcome: Exclude<Outcome, 'ok'>,
    readonly message: string,
  ) {}
}

const CLOSED_BY_DRIVER = new Finished('closed', 'closed by driver');

/** One ext_proc stream with Envoy's "exactly one response per message, in order" bookkeeping. */
class ExtProcStream {
  private readonly call: grpc.ClientDuplexStream<Buffer, ProcessingResponseMsg>;
  private readonly expected: PhaseName[] = [];
  private head = 0;
  private waiter: { resolve: () => void; reject: (e: Finished) => void } | undefined;
  private finished: Finished | undefined;
  private onStatus: (() => void) | undefined;
  private gotStatus = false;
  lastHeadersResponse: ProcessingResponseMsg | undefined;
  messages = 0;
  maxWaitMs = 0;

  constructor(client: grpc.Client, deserialize: (b: Buffer) => ProcessingResponseMsg) {
    this.call = client.makeBidiStreamRequest(PROCESS_PATH, identity, deserialize);
    this.call.on('data', (resp: ProcessingResponseMsg) => this.onResponse(resp));
    this.call.on('status', (s: grpc.StatusObject) => {
      this.gotStatus = true;
      this.onStatus?.();
      if (this.finished) return;
      if (s.code === grpc.status.OK) {
        // Clean server close: Envoy continues the HTTP request without ext_proc.
        this.finish(new Finished('closed', 'server closed the stream (OK) before the last response'));
      } else {
        const text = `gRPC status ${grpc.status[s.code] ?? s.code}: ${s.details}`;
        const goaway = /Session closed with error code|GOAWAY/i.test(s.details);
        this.finish(new Finished(goaway ? 'goaway' : 'error', text));
      }
    });
    this.call.on('error', () => {}); // reported via 'status'
  }

  private finish(f: Finished): void {
    if (this.finished) return;
    this.finished = f;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(f);
  }

  private onResponse(resp: ProcessingResponseMsg): void {
    if (this.finished) return;
    if (resp.override_message_timeout) return; // not an answer; other fields are ignored by Envoy
    if (resp.response === 'immediate_response') {
      const code = resp.immediate_response?.status?.code ?? '200';
      this.finish(new Finished('immediate', `immediate_response ${code}`));
      return;
    }
    const exp = this.expected[this.head];
    if (exp === undefined || resp.response !== exp) {
      this.finish(
        new Finished('error', `spurious message: got ${resp.response ?? '(none)'}, expected ${exp ?? 'nothing'}`),
      );
      return;
    }
    this.head++;
    if (exp === 'request_headers' || exp === 'response_headers') this.lastHeadersResponse = resp;
    if (this.head === this.expected.length) {
      const w = this.waiter;
      this.waiter = undefined;
      w?.resolve();
    }
  }

  send(msg: Buffer, phase: PhaseName): void {
    if (this.finished) throw this.finished;
    this.expected.push(phase);
    this.messages++;
    this.call.write(msg);
  }

  /** Wait until every message sent so far has its response. */
  async drain(): Promise<void> {
    if (this.finished) throw this.finished;
    if (this.head === this.expected.length) return;
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    const waited = performance.now() - t0;
    if (waited > this.maxWaitMs) this.maxWaitMs = waited;
  }

  /** Envoy's close(): half-close then reset; or half-close and wait for the server's status. */
  async close(mode: CloseMode): Promise<void> {
    this.finished ??= CLOSED_BY_DRIVER;
    this.call.end();
    if (mode === 'graceful' && !this.gotStatus) {
      const status = new Promise<void>((resolve) => {
        this.onStatus = resolve;
      });
      const timer = setTimeout(() => this.call.cancel(), 5000);
      await status;
      clearTimeout(timer);
    } else {
      this.call.cancel();
    }
  }
}

function sendBody(
  s: ExtProcStream,
  mode: BodySendMode,
  phase: 'request_body' | 'response_body',
  whole: Buffer,
  chunks: Buffer[] | undefined,
): void {
  switch (mode) {
    case 'NONE':
      return;
    case 'BUFFERED':
    case 'BUFFERED_PARTIAL': // body is far below the buffer limit: one message, end_of_stream
      s.send(whole, phase);
      return;
    case 'STREAMED':
      if (chunks) for (const c of chunks) s.send(c, phase); // pipelined, no waiting
      else s.send(whole, phase); // whole body arrived in one data callback
      return;
    default:
      throw new Finished('error', `body mode ${mode} not supported by the bench driver`);
  }
}

/** Drive one HTTP request's ext_proc stream, as Envoy would. */
export async function runRequest(
  ctx: DriverContext,
  client: grpc.Client,
  closeMode: CloseMode = 'reset',
): Promise<RequestResult> {
  const { variant } = ctx;
  const t0 = performance.now();
  const configured = variant.mode;
  let mode: FullMode = configured;
  const s = new ExtProcStream(client, ctx.defs.process.responseDeserialize);
  const takeOverride = (): void => {
    const o = s.lastHeadersResponse?.mode_override;
    if (variant.allowModeOverride && o) mode = applyModeOverride(configured, mode, o);
  };
  try {
    // request_header_mode is SEND in both variants (ext_proc needs the headers).
    s.send(ctx.encodeRequestHeaders(randomUUID()), 'request_headers');
    await s.drain();
    takeOverride();

    sendBody(s, mode.request_body_mode, 'request_body', ctx.requestBodyMsg, undefined);
    await s.drain();

    if (mode.response_header_mode !== 'SKIP') {
      s.lastHeadersResponse = undefined;
      s.send(ctx.responseHeadersMsg, 'response_headers');
      await s.drain();
      takeOverride();
    }

    sendBody(s, mode.response_body_mode, 'response_body', ctx.responseBodyBufferedMsg, ctx.responseChunkMsgs);
    await s.drain();
    const latencyMs = performance.now() - t0;
    await s.close(closeMode);
    return { outcome: 'ok', messages: s.messages, maxWaitMs: s.maxWaitMs, latencyMs };
  } catch (err) {
    const latencyMs = performance.now() - t0;
    await s.close('reset');
    if (err instanceof Finished) {
      return { outcome: err.outcome, messages: s.messages, maxWaitMs: s.maxWaitMs, latencyMs, error: err.message };
    }
    throw err;
  }
}

function newClient(port: number): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    // Envoy addresses the ext_proc cluster by name.
    'grpc.default_authority': 'ext_proc',
    // One HTTP/2 connection per client (Envoy: one per worker thread).
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
}

interface Slot {
  client: grpc.Client;
  /** Streams started on this connection. */
  started: number;
  /** Streams not yet finished. */
  active: number;
  retired: boolean;
}

/**
 * The driver's HTTP/2 connections to one server: `connections` of them (Envoy: one per worker),
 * optionally replaced after `maxStreamsPerConnection` streams like Envoy's cluster setting
 * `max_requests_per_connection` (the old connection is closed once its streams are done).
 */
export class ClientPool {
  private readonly slots: Slot[] = [];
  /** Connections opened after the initial ones. */
  recycled = 0;

  constructor(
    private readonly port: number,
    connections: number,
    private readonly maxStreamsPerConnection = 0,
  ) {
    for (let i = 0; i < Math.max(1, connections); i++) this.slots.push(this.newSlot());
  }

  private newSlot(): Slot {
    return { client: newClient(this.port), started: 0, active: 0, retired: false };
  }

  /** A connection for the next stream of worker `w`; call `release` when the stream is over. */
  acquire(w: number): { client: grpc.Client; release: () => void } {
    const i = w % this.slots.length;
    let slot = this.slots[i]!;
    if (this.maxStreamsPerConnection > 0 && slot.started >= this.maxStreamsPerConnection) {
      slot.retired = true;
      if (slot.active === 0) slot.client.close();
      slot = this.newSlot();
      this.slots[i] = slot;
      this.recycled++;
    }
    slot.started++;
    slot.active++;
    const s = slot;
    return {
      client: s.client,
      release: () => {
        s.active--;
        if (s.retired && s.active === 0) s.client.close();
      },
    };
  }

  async waitReady(timeoutMs = 10_000): Promise<void> {
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve, reject) =>
            s.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
          ),
      ),
    );
  }

  close(): void {
    for (const s of this.slots) s.client.close();
  }
}

export interface LoadResult {
  requests: number;
  wallMs: number;
  latenciesMs: Float64Array;
  messages: number;
  /** Messages of the requests that completed normally (outcome ok). */
  okMessages: number;
  outcomes: Record<Outcome, number>;
  /** Requests where some wait exceeded message_timeout (Envoy would have answered 504). */
  overTimeout: number;
  firstError?: string;
  /** Driver (parent process) CPU µs spent during the run. */
  driverCpuUs: number;
}

/** Run `total` requests with `concurrency` in flight, spread round-robin over the clients. */
export async function runLoad(
  ctx: DriverContext,
  pool: ClientPool,
  total: number,
  concurrency: number,
  closeMode: CloseMode,
  abort?: Promise<never>,
): Promise<LoadResult> {
  const latenciesMs = new Float64Array(total);
  const outcomes: Record<Outcome, number> = { ok: 0, immediate: 0, closed: 0, goaway: 0, error: 0 };
  let messages = 0;
  let okMessages = 0;
  let overTimeout = 0;
  let firstError: string | undefined;
  let next = 0;
  let done = 0; // completed requests; also the next free slot in latenciesMs
  const worker = async (w: number): Promise<void> => {
    while (next < total) {
      next++;
      const conn = pool.acquire(w);
      let r: RequestResult;
      try {
        r = await runRequest(ctx, conn.client, closeMode);
      } finally {
        conn.release();
      }
      latenciesMs[done++] = r.latencyMs;
      messages += r.messages;
      if (r.outcome === 'ok') okMessages += r.messages;
      outcomes[r.outcome]++;
      if (r.maxWaitMs > ctx.messageTimeoutMs) overTimeout++;
      if (r.error && r.outcome !== 'ok') firstError ??= r.error;
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const all = Promise.all(Array.from({ length: Math.max(1, concurrency) }, (_, w) => worker(w)));
  await (abort ? Promise.race([all, abort]) : all);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    requests: done,
    wallMs,
    latenciesMs: latenciesMs.subarray(0, done),
    messages,
    okMessages,
    outcomes,
    overTimeout,
    firstError,
    driverCpuUs: cpu.user + cpu.system,
  };
}
