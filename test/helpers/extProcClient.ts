/**
 * A scripted ext_proc client for protocol-level tests: sends ProcessingRequest messages (or raw
 * bytes) on one Process stream exactly as given and collects the decoded answers, so a test can
 * assert each ProcessingResponse. (The full Envoy stand-in lives in test/envoy-standin.)
 */
import { Client, credentials, Metadata, type ClientDuplexStream, type StatusObject } from '@grpc/grpc-js';
import { loadService } from '../../extproc/server/protocol.js';

const service = loadService('envoy/service/ext_proc/v3/external_processor.proto', 'envoy.service.ext_proc.v3.ExternalProcessor');
const method = service['Process']!;

/** A decoded ProcessingResponse (proto-loader object shape). */
export type Response = Record<string, any>;

/** One open Process stream. */
export interface TestStream {
  /** Sends a ProcessingRequest object, or raw bytes as a message. */
  send(message: Record<string, unknown> | Buffer): void;
  /** Resolves with the next answer (in order); rejects after `timeoutMs` without one. */
  next(timeoutMs?: number): Promise<Response>;
  /** Resolves true if no answer arrives within `ms`. */
  silentFor(ms: number): Promise<boolean>;
  /** Half-close (Envoy's closeStream). */
  end(): void;
  /** Cancel (Envoy's resetStream after half-close). */
  cancel(): void;
  /** Final gRPC status of the stream. */
  readonly status: Promise<StatusObject>;
}

/** A client connected to `127.0.0.1:port`. */
export function connect(port: number, options: Record<string, number> = {}): { open(metadata?: Record<string, string>): TestStream; close(): void } {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), options);
  return {
    open(metadata = {}) {
      const md = new Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      const call: ClientDuplexStream<Record<string, unknown> | Buffer, Response> = client.makeBidiStreamRequest(
        method.path,
        (v: Record<string, unknown> | Buffer) => (Buffer.isBuffer(v) ? v : method.requestSerialize(v)),
        (b: Buffer) => method.responseDeserialize(b) as Response,
        md,
      );
      const answers: Response[] = [];
      const waiters: ((r: Response) => void)[] = [];
      call.on('data', (r: Response) => {
        const w = waiters.shift();
        if (w) w(r);
        else answers.push(r);
      });
      call.on('error', () => undefined); // status is reported through `status`
      const status = new Promise<StatusObject>((resolve) => call.on('status', resolve));
      return {
        send: (m) => call.write(m),
        next(timeoutMs = 2000) {
          const queued = answers.shift();
          if (queued) return Promise.resolve(queued);
          return new Promise<Response>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('no answer within ' + timeoutMs + ' ms')), timeoutMs);
            waiters.push((r) => {
              clearTimeout(timer);
              resolve(r);
            });
          });
        },
        async silentFor(ms) {
          await new Promise((r) => setTimeout(r, ms));
          return answers.length === 0;
        },
        end: () => call.end(),
        cancel: () => call.cancel(),
        status,
      };
    },
    close: () => client.close(),
  };
}

/** A HeaderMap as Envoy sends it: lower-case keys, values in raw_value. */
export function headerMap(headers: Record<string, string>): { headers: { key: string; raw_value: Buffer }[] } {
  return { headers: Object.entries(headers).map(([key, value]) => ({ key, raw_value: Buffer.from(value) })) };
}

/** The first message of an LLM call as Envoy's shipped config sends it (protocol_config: BUFFERED both ways). */
export function requestHeaders(headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    request_headers: {
      headers: headerMap({
        ':method': 'POST',
        ':path': '/v1/chat/completions',
        ':authority': 'llm.internal',
        ':scheme': 'http',
        'content-type': 'application/json',
        'x-request-id': 'req-test-1',
        ...headers,
      }),
    },
    protocol_config: { request_body_mode: 'BUFFERED', response_body_mode: 'BUFFERED' },
    ...extra,
  };
}

/** Header mutation of an answer as a name → value map (raw_value decoded). */
export function setHeadersOf(common: Response | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of common?.header_mutation?.set_headers ?? []) out[h.header.key] = Buffer.from(h.header.raw_value ?? '').toString();
  return out;
}
