/**
 * Test helpers for the Envoy stand-in: a scripted ext_proc gRPC server (each stream driven by the
 * test), a tiny upstream HTTP server, an HTTP client that records chunk arrival, and builders of
 * small bootstrap configs in Envoy's YAML shape (run through the same strict parser).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import YAML from 'yaml';
import { startStandin, type Standin, type StandinOptions } from '../envoy-standin/standin.js';
import {
  extProcServiceDefinition,
  repoRoot,
  structToJson,
  type JsonObject,
  type PbHeaderValue,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../envoy-standin/proto.js';

export const SHIPPED_ENVOY_YAML = path.join(repoRoot, 'envoy', 'envoy.yaml');
/** A fixed bootstrap with a three-provider llm_chain (OpenAI, Anthropic, Mistral), for the router tests. */
export const CHAIN_FIXTURE_YAML = path.join(repoRoot, 'test', 'standin', 'fixtures', 'envoy-three-providers.yaml');

// ---- scripted ext_proc server ----------------------------------------------------------------------

export class ScriptedStream {
  readonly received: ProcessingRequest[] = [];
  /** Responses this server sent, in order. */
  readonly sent: ProcessingResponse[] = [];
  cancelled = false;
  halfClosed = false;
  private readIndex = 0;
  private waiters: (() => void)[] = [];
  private closedResolve!: () => void;
  /** Resolves when the client cancelled or half-closed and the call ended. */
  readonly closed = new Promise<void>((r) => (this.closedResolve = r));
  /** host:port of the client's HTTP/2 connection, read on arrival (grpc-js forgets it once closed). */
  readonly peer: string;

  constructor(readonly call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) {
    this.peer = call.getPeer();
    call.on('data', (m: ProcessingRequest) => {
      this.received.push(m);
      this.wake();
    });
    call.on('end', () => {
      this.halfClosed = true;
      this.wake();
    });
    call.on('cancelled', () => {
      this.cancelled = true;
      this.wake();
      this.closedResolve();
    });
    call.on('error', () => {});
    call.on('close', () => this.closedResolve());
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get authority(): string {
    return this.call.getHost();
  }

  /** The next message not yet consumed by next(). */
  async next(timeoutMs = 2000): Promise<ProcessingRequest> {
    const deadline = Date.now() + timeoutMs;
    while (this.readIndex >= this.received.length) {
      if (this.cancelled || this.halfClosed) throw new Error(`stream closed after ${this.received.length} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message ${this.readIndex} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received[this.readIndex++]!;
  }

  send(resp: ProcessingResponse): void {
    this.sent.push(resp);
    if (!this.cancelled) this.call.write(resp);
  }

  /** Server closes the stream: OK, or with an error status. */
  end(status?: { code: grpc.status; details?: string }): void {
    if (!status || status.code === grpc.status.OK) this.call.end();
    else this.call.emit('error', { code: status.code, details: status.details ?? '' });
  }

  /** The kinds of messages received, e.g. ['request_headers', 'request_body', ...]. */
  kinds(): string[] {
    return this.received.map((m) => m.request ?? '?');
  }
}

export type StreamScript = (s: ScriptedStream) => void | Promise<void>;

export interface ScriptedExtProc {
  address: string;
  streams: ScriptedStream[];
  /** Errors thrown by scripts (re-thrown by assertNoScriptErrors). */
  errors: unknown[];
  assertNoScriptErrors(): void;
  close(): Promise<void>;
}

/**
 * A gRPC ext_proc server; `script` runs once per stream. Scripts pick which stream they are by
 * `index` (0-based, in arrival order).
 */
export async function startScriptedExtProc(script: (s: ScriptedStream, index: number) => void | Promise<void>): Promise<ScriptedExtProc> {
  // Large BUFFERED bodies (the 5 MB test) travel in one message: lift grpc-js's 4 MiB default,
  // as the gateway does (server.maxMessageBytes).
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  const streams: ScriptedStream[] = [];
  const errors: unknown[] = [];
  server.addService(extProcServiceDefinition(), {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      const s = new ScriptedStream(call);
      const i = streams.push(s) - 1;
      Promise.resolve()
        .then(() => script(s, i))
        .catch((e: unknown) => {
          if (!s.cancelled && !s.halfClosed) errors.push(e);
        });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    streams,
    errors,
    assertNoScriptErrors() {
      if (errors.length > 0) throw errors[0];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 200).unref();
      }),
  };
}

/** Default answers: CONTINUE of the matching kind. */
export function continueFor(m: ProcessingRequest): ProcessingResponse {
  switch (m.request) {
    case 'request_headers':
      return { request_headers: {} };
    case 'response_headers':
      return { response_headers: {} };
    case 'request_body':
      return { request_body: {} };
    case 'response_body':
      return { response_body: {} };
    default:
      throw new Error(`unexpected ${m.request}`);
  }
}

export type Hook = (m: ProcessingRequest, s: ScriptedStream) => ProcessingResponse | undefined | null | Promise<ProcessingResponse | undefined | null>;

/**
 * A script that answers every message, using `hook` when it returns a response, the default
 * CONTINUE when it returns undefined, and nothing when it returns null.
 */
export function autoRespond(hook?: Hook): StreamScript {
  return async (s) => {
    for (;;) {
      let m: ProcessingRequest;
      try {
        m = await s.next(10_000);
      } catch {
        return;
      }
      const r = hook ? await hook(m, s) : undefined;
      if (r === null) continue;
      s.send(r ?? continueFor(m));
    }
  };
}

// ---- message helpers -------------------------------------------------------------------------------

export function headersOf(m: ProcessingRequest): [string, string][] {
  const hh = (m.request_headers ?? m.response_headers)?.headers?.headers ?? [];
  return hh.map((h: PbHeaderValue) => [h.key ?? '', h.raw_value ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '')]);
}

export function header(m: ProcessingRequest, name: string): string | undefined {
  return headersOf(m).find(([k]) => k === name)?.[1];
}

export function bodyOf(m: ProcessingRequest): Buffer {
  const b = (m.request_body ?? m.response_body)?.body;
  return b ? Buffer.from(b) : Buffer.alloc(0);
}

export function eosOf(m: ProcessingRequest): boolean {
  return Boolean((m.request_headers ?? m.response_headers ?? m.request_body ?? m.response_body)?.end_of_stream);
}

export function attributesOf(m: ProcessingRequest): JsonObject | undefined {
  const a = m.attributes?.['envoy.filters.http.ext_proc'];
  return a ? structToJson(a) : undefined;
}

export function metadataOf(m: ProcessingRequest): Record<string, JsonObject> {
  const out: Record<string, JsonObject> = {};
  for (const [k, v] of Object.entries(m.metadata_context?.filter_metadata ?? {})) out[k] = structToJson(v);
  return out;
}

/** A set_headers entry with the value in raw_value, as a well-behaved server sends it. */
export function setHeader(key: string, value: string, append?: boolean) {
  return { header: { key, raw_value: Buffer.from(value, 'latin1') }, ...(append ? { append: { value: true } } : {}) };
}

// ---- upstream ------------------------------------------------------------------------------------

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface FakeUpstream {
  url: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type UpstreamHandler = (req: RecordedRequest, res: http.ServerResponse, index: number) => void | Promise<void>;

/** A tiny HTTP/1.1 server: records each request (after its body), then runs `handler`. */
export async function startUpstream(handler: UpstreamHandler): Promise<FakeUpstream> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const r: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
      };
      const i = requests.push(r) - 1;
      Promise.resolve(handler(r, res, i)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An address nothing listens on (connect → ECONNREFUSED). */
export async function deadAddress(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

export function json(res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(b.length), ...extra });
  res.end(b);
}

// ---- client --------------------------------------------------------------------------------------

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** Arrival time (ms since the request) and bytes of each data event. */
  chunks: { at: number; data: Buffer }[];
  /** The response was cut (stream reset). */
  aborted: boolean;
}

export interface ClientRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The body written in parts, `partDelayMs` apart (content-length set unless `chunked`). */
  parts?: (string | Buffer)[];
  partDelayMs?: number;
  chunked?: boolean;
  /** Called with every received chunk (e.g. to let the upstream send its next one). */
  onChunk?: (data: Buffer) => void;
}

export function request(url: string, r: ClientRequest = {}): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const parts = r.parts?.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)));
    const body = r.body === undefined ? (parts ? Buffer.concat(parts) : undefined) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
    const headers: Record<string, string> = { ...(r.headers ?? {}) };
    if (body && !r.chunked && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) headers['content-length'] = String(body.length);
    const req = http.request(url, { method: r.method ?? (body ? 'POST' : 'GET'), headers, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: { at: number; data: Buffer }[] = [];
      let aborted = false;
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks.map((c) => c.data)),
          text: Buffer.concat(chunks.map((c) => c.data)).toString('utf8'),
          chunks,
          aborted,
        });
      res.on('data', (d: Buffer) => {
        chunks.push({ at: Date.now() - started, data: d });
        r.onChunk?.(d);
      });
      res.on('error', () => {
        aborted = true;
      });
      res.on('close', () => {
        if (!res.complete) aborted = true;
        done();
      });
    });
    if (!parts) {
      req.end(body);
      return;
    }
    req.flushHeaders();
    void (async () => {
      for (const p of parts) {
        await sleep(r.partDelayMs ?? 20);
        req.write(p);
      }
      req.end();
    })();
  });
}

// ---- configs ---------------------------------------------------------------------------------------

/** The shipped envoy/envoy.yaml as a document tests may modify before starting the stand-in. */
export function loadShippedDoc(): Record<string, any> {
  return YAML.parse(fs.readFileSync(SHIPPED_ENVOY_YAML, 'utf8')) as Record<string, any>;
}

/** The three-provider chain fixture as a document (router tests). */
export function loadChainFixtureDoc(): Record<string, any> {
  return YAML.parse(fs.readFileSync(CHAIN_FIXTURE_YAML, 'utf8')) as Record<string, any>;
}

const EXT_PROC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor';

export interface TestConfig {
  /** ExternalProcessor fields besides grpc_service (merged over a default with a 1 s message_timeout). */
  extProc?: Record<string, unknown>;
  /** Several HCM ext_proc filters (each merged like `extProc`); overrides `extProc`. */
  extProcs?: Record<string, unknown>[];
  /** Routes; default one route "/" → cluster "backend". */
  routes?: unknown[];
  /** VirtualHost extras, e.g. include_request_attempt_count. */
  vhost?: Record<string, unknown>;
  /** Extra clusters. */
  clusters?: unknown[];
  bufferLimit?: number;
  accessLogFormat?: Record<string, string>;
}

/** A small bootstrap: listener → ext_proc filter(s) → router; cluster "backend" + "ext_proc". */
export function testBootstrap(c: TestConfig = {}): Record<string, unknown> {
  const extProcs = c.extProcs ?? [c.extProc ?? {}];
  return {
    static_resources: {
      listeners: [
        {
          name: 'test',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          ...(c.bufferLimit !== undefined ? { per_connection_buffer_limit_bytes: c.bufferLimit } : {}),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'test',
                    ...(c.accessLogFormat
                      ? {
                          access_log: [
                            {
                              name: 'envoy.access_loggers.stdout',
                              typed_config: {
                                '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
                                log_format: { json_format: c.accessLogFormat },
                              },
                            },
                          ],
                        }
                      : {}),
                    route_config: {
                      name: 'routes',
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          ...(c.vhost ?? {}),
                          routes: c.routes ?? [{ name: 'default', match: { prefix: '/' }, route: { cluster: 'backend', timeout: '5s' } }],
                        },
                      ],
                    },
                    http_filters: [
                      ...extProcs.map((e, i) => ({
                        name: `envoy.filters.http.ext_proc${i === 0 ? '' : `.${i}`}`,
                        typed_config: {
                          '@type': EXT_PROC_TYPE,
                          grpc_service: { envoy_grpc: { cluster_name: 'ext_proc' } },
                          message_timeout: '1s',
                          ...e,
                        },
                      })),
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'ext_proc',
          type: 'STATIC',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: { cluster_name: 'ext_proc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } }] }] },
        },
        staticCluster('backend', 1),
        ...(c.clusters ?? []),
      ],
    },
  };
}

export function staticCluster(name: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...extra,
  };
}

/** Starts the stand-in on a test bootstrap with the ext_proc server and a "backend" upstream. */
export async function standinFor(
  ep: ScriptedExtProc,
  backendUrl: string,
  c: TestConfig = {},
  extra: Partial<StandinOptions> = {},
): Promise<Standin> {
  return startStandin({
    bootstrap: testBootstrap(c),
    extProcAddress: ep.address,
    seed: 7,
    backOffScale: 0.01,
    ...extra,
    clusterEndpoints: { backend: backendUrl, ...(extra.clusterEndpoints ?? {}) },
  });
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `cond()` is true. */
export async function until(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}
