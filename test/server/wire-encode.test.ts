/**
 * The server's own ProcessingResponse encoder (server/wireEncode) against protobufjs: every
 * answer server/encode builds from random stage decisions, plus timeouts, decodes to the same
 * message and has the same bytes; a field it does not know is refused (protobufjs encodes it).
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 as rng } from '../helpers/prng.js';
import { loadService } from '../../extproc/server/protocol.js';
import { encodeProcessingResponse, UnsupportedField } from '../../extproc/server/wireEncode.js';
import { encodeResponse } from '../../extproc/server/encode.js';
import { PhaseOutput } from '../../extproc/pipeline/output.js';
import type { RequestKind } from '../../extproc/server/protocol.js';

const method = loadService('envoy/service/ext_proc/v3/external_processor.proto', 'envoy.service.ext_proc.v3.ExternalProcessor')['Process']!;
const reference = (m: Record<string, unknown>): Buffer => method.responseSerialize(m);
const decode = (b: Buffer): unknown => method.responseDeserialize(b);

function text(r: () => number, max: number): string {
  const chars = [...'abcXYZ09 -_/.:é€😀"'];
  let s = '';
  for (let i = Math.floor(r() * max); i > 0; i--) s += chars[Math.floor(r() * chars.length)];
  return s;
}

function metadataValue(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 2 ? 4 : 6));
  if (k === 0) return null;
  if (k === 1) return r() < 0.5 ? Math.floor(r() * 1e6) : (r() - 0.5) * 1e9;
  if (k === 2) return text(r, 30);
  if (k === 3) return r() < 0.5;
  if (k === 4) return Array.from({ length: Math.floor(r() * 4) }, () => metadataValue(r, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(r() * 4) }, () => [text(r, 8), metadataValue(r, depth + 1)]));
}

/** A stage decision of random content, as PhaseOutput holds it. */
function randomOutput(r: () => number): PhaseOutput {
  const o = new PhaseOutput();
  for (let i = Math.floor(r() * 12); i > 0; i--) o.setHeader(`x-${text(r, 10).toLowerCase().replace(/[^a-z0-9-]/g, 'h')}`, text(r, 300));
  for (let i = Math.floor(r() * 3); i > 0; i--) o.removeHeader(`x-gone-${i}`);
  if (r() < 0.3) o.replaceBody(r() < 0.1 ? Buffer.alloc(0) : Buffer.from(text(r, r() < 0.05 ? 20_000 : 500)));
  if (r() < 0.3) o.clearRouteCache = true;
  for (let i = Math.floor(r() * 4); i > 0; i--) o.setMetadata(r() < 0.7 ? 'ai_gateway' : text(r, 6), text(r, 10), metadataValue(r, 0) as never);
  if (r() < 0.1) o.respond({ status: [200, 400, 429, 503][Math.floor(r() * 4)]!, body: text(r, 200), headers: { 'content-type': 'application/json', 'Retry-After': '3' }, ...(r() < 0.5 ? { details: text(r, 20) } : {}) });
  return o;
}

const KINDS: RequestKind[] = ['request_headers', 'response_headers', 'request_body', 'response_body', 'request_trailers', 'response_trailers'];

describe('server/wireEncode: ProcessingResponse to bytes', () => {
  it('encodes 2,000 random answers of every kind to the bytes protobufjs writes', () => {
    const r = rng(42);
    for (let i = 0; i < 2000; i++) {
      const kind = KINDS[Math.floor(r() * KINDS.length)]!;
      const mode = r() < 0.3 ? { request_body_mode: 'BUFFERED', response_body_mode: r() < 0.5 ? 'STREAMED' : 'NONE', response_header_mode: 'SEND' } : undefined;
      const response = encodeResponse(kind, randomOutput(r), mode as never) as Record<string, unknown>;
      const ours = encodeProcessingResponse(response);
      const theirs = reference(response);
      expect(decode(ours), `answer ${i}`).toEqual(decode(theirs));
      expect(ours.equals(theirs), `answer ${i} bytes`).toBe(true);
    }
  });

  it('encodes a message timeout override and an empty answer', () => {
    for (const m of [{ override_message_timeout: { seconds: 2, nanos: 500_000_000 } }, { request_body: {} }, { response_headers: { response: { status: 'CONTINUE_AND_REPLACE' } } }]) {
      expect(encodeProcessingResponse(m).equals(reference(m))).toBe(true);
    }
  });

  it('refuses fields it does not know, and a bytes field given as a string (base64 to protobufjs), so protobufjs encodes them', () => {
    for (const m of [{ request_drain: true }, { request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x', raw_value: 'text' } }] } } } }, { request_headers: { response: { trailers: { headers: [] } } } }, { immediate_response: { grpc_status: { status: 3 } } }, { mode_override: { request_body_mode: 'SOMETHING' } }]) {
      expect(() => encodeProcessingResponse(m)).toThrow(UnsupportedField);
    }
  });
});
