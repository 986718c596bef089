/**
 * The server's own ProcessingRequest decoder (server/wireDecode) against protobufjs (what
 * proto-loader gives for protos/): the same message on 5,000 random requests of every kind,
 * with unknown fields of every wire type mixed in; header values as bytes of their own (not a
 * view on the gRPC frame); malformed bytes refused.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 as rng } from '../helpers/prng.js';
import { loadService } from '../../extproc/server/protocol.js';
import { decodeProcessingRequest } from '../../extproc/server/wireDecode.js';
import { HeaderView, type PackedHeaders } from '../../extproc/pipeline/headers.js';
import type { PbHttpHeaders, PbProcessingRequest } from '../../extproc/server/protocol.js';

const method = loadService('envoy/service/ext_proc/v3/external_processor.proto', 'envoy.service.ext_proc.v3.ExternalProcessor')['Process']!;
const encode = (m: Record<string, unknown>): Buffer => method.requestSerialize(m);
const reference = (b: Buffer): PbProcessingRequest => method.requestDeserialize(b) as PbProcessingRequest;

const NAMES = [':path', ':method', ':authority', ':status', 'content-type', 'content-length', 'x-request-id', 'authorization', 'x-forwarded-client-cert', 'x-gateway-model', 'ü-header'];

function randomString(r: () => number, max: number): string {
  const alphabet = 'abcXYZ019 -_/.:;=é€😀"\\';
  const chars = [...alphabet];
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += chars[Math.floor(r() * chars.length)];
  return s;
}

function randomBytes(r: () => number, max: number): Buffer {
  const b = Buffer.alloc(Math.floor(r() * max));
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function randomValue(r: () => number, depth: number): Record<string, unknown> {
  const k = Math.floor(r() * (depth > 2 ? 4 : 6));
  if (k === 0) return { nullValue: 'NULL_VALUE' };
  if (k === 1) return { numberValue: r() < 0.5 ? Math.floor(r() * 1e6) : (r() - 0.5) * 1e12 };
  if (k === 2) return { stringValue: randomString(r, 12) };
  if (k === 3) return { boolValue: r() < 0.5 };
  if (k === 4) return { structValue: randomStruct(r, depth + 1) };
  return { listValue: { values: Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1)) } };
}

function randomStruct(r: () => number, depth = 0): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  const n = Math.floor(r() * 4);
  for (let i = 0; i < n; i++) fields[randomString(r, 8)] = randomValue(r, depth);
  return { fields };
}

function randomRequest(r: () => number): Record<string, unknown> {
  const kind = ['request_headers', 'response_headers', 'request_body', 'response_body', 'request_trailers', 'response_trailers'][Math.floor(r() * 6)]!;
  const m: Record<string, unknown> = {};
  if (kind.endsWith('_headers') || kind.endsWith('_trailers')) {
    const headers = Array.from({ length: Math.floor(r() * 40) }, () => {
      const key = r() < 0.8 ? NAMES[Math.floor(r() * NAMES.length)]! : randomString(r, 20);
      const form = r();
      // Envoy sends raw_value; `value` (older Envoys), both or neither must read the same way.
      if (form < 0.6) return { key, raw_value: r() < 0.2 ? randomBytes(r, 30) : Buffer.from(randomString(r, 60)) };
      if (form < 0.8) return { key, value: randomString(r, 60) };
      if (form < 0.9) return { key, value: randomString(r, 10), raw_value: Buffer.from(randomString(r, 10)) };
      return { key };
    });
    const map = { headers };
    m[kind] = kind.endsWith('_headers') ? { headers: map, ...(r() < 0.5 ? { end_of_stream: r() < 0.5 } : {}) } : { trailers: map };
  } else {
    m[kind] = { ...(r() < 0.9 ? { body: randomBytes(r, 400) } : {}), ...(r() < 0.5 ? { end_of_stream: r() < 0.5 } : {}) };
  }
  if (r() < 0.3) m['metadata_context'] = { filter_metadata: { ai_gateway: randomStruct(r), [randomString(r, 6)]: randomStruct(r) } };
  if (r() < 0.3) m['attributes'] = { 'envoy.filters.http.ext_proc': randomStruct(r) };
  if (r() < 0.2) m['observability_mode'] = r() < 0.5;
  if (r() < 0.3) m['protocol_config'] = { request_body_mode: ['NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL'][Math.floor(r() * 4)], response_body_mode: 'STREAMED', send_body_without_waiting_for_header_response: r() < 0.5 };
  return m;
}

/** Unknown fields (numbers the protos do not use) of each wire type. */
function unknownFields(r: () => number): Buffer {
  const parts: Buffer[] = [];
  const field = 100 + Math.floor(r() * 1000);
  const tag = (wt: number): number[] => varint(field * 8 + wt);
  switch (Math.floor(r() * 4)) {
    case 0:
      parts.push(Buffer.from([...tag(0), ...varint(Math.floor(r() * 2 ** 31))]));
      break;
    case 1:
      parts.push(Buffer.from([...tag(1), 1, 2, 3, 4, 5, 6, 7, 8]));
      break;
    case 2: {
      const payload = randomBytes(r, 20);
      parts.push(Buffer.from([...tag(2), ...varint(payload.length)]), payload);
      break;
    }
    default:
      parts.push(Buffer.from([...tag(5), 1, 2, 3, 4]));
  }
  return Buffer.concat(parts);
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A header block as bytes per header (what either decoder gives), for comparison. */
function headerBytes(h: PbHttpHeaders | { trailers?: { headers?: unknown[] } } | undefined): [string, string][] {
  const anyH = h as { packed?: PackedHeaders; headers?: { headers?: { key?: string; value?: string; raw_value?: Buffer }[] }; trailers?: { headers?: { key?: string; value?: string; raw_value?: Buffer }[] } } | undefined;
  if (anyH?.packed) {
    const p = anyH.packed;
    return p.names.map((n, i) => [n, p.values.subarray(p.bounds[2 * i]!, p.bounds[2 * i + 1]!).toString('hex')]);
  }
  const entries = anyH?.headers?.headers ?? anyH?.trailers?.headers ?? [];
  return entries.map((e) => [e.key ?? '', e.raw_value && e.raw_value.length > 0 ? e.raw_value.toString('hex') : Buffer.from(e.value ?? '').toString('hex')]);
}

/** Both decoders' output in one comparable form. */
function normal(m: PbProcessingRequest): Record<string, unknown> {
  const out: Record<string, unknown> = { ...m };
  for (const k of ['request_headers', 'response_headers', 'request_trailers', 'response_trailers'] as const) {
    const h = m[k] as (PbHttpHeaders & { trailers?: unknown }) | undefined;
    if (h === undefined) continue;
    const headers = headerBytes(h);
    out[k] = { ...(h.end_of_stream !== undefined ? { end_of_stream: h.end_of_stream } : {}), ...(headers.length > 0 ? { headers } : {}) };
  }
  for (const k of ['request_body', 'response_body'] as const) {
    const b = m[k];
    if (b === undefined) continue;
    out[k] = { ...(b.end_of_stream !== undefined ? { end_of_stream: b.end_of_stream } : {}), body: (b.body ?? Buffer.alloc(0)).toString('hex') };
  }
  // protobufjs leaves out an empty map or list; the decoder gives it empty (both read as empty).
  const empty = (v: unknown): boolean =>
    !!v && typeof v === 'object' && (('fields' in v && Object.keys((v as { fields: object }).fields).length === 0) || ('values' in v && (v as { values: unknown[] }).values.length === 0));
  return JSON.parse(JSON.stringify(out, (_k, v: unknown) => (empty(v) ? {} : v)));
}

describe('server/wireDecode: ProcessingRequest from bytes', () => {
  it('decodes 5,000 random requests of every kind exactly as protobufjs does, unknown fields skipped', () => {
    const r = rng(20261130);
    for (let i = 0; i < 5000; i++) {
      const bytes = encode(randomRequest(r));
      const withUnknown = r() < 0.3 ? Buffer.concat([unknownFields(r), bytes, unknownFields(r)]) : bytes;
      const ours = decodeProcessingRequest(withUnknown);
      expect(normal(ours), `request ${i}`).toEqual(normal(reference(bytes)));
    }
  });

  it('gives header values as bytes of their own (the gRPC frame is not kept alive) and reads them through HeaderView', () => {
    const frame = Buffer.concat([Buffer.alloc(7), encode({ request_headers: { headers: { headers: [{ key: ':path', raw_value: Buffer.from('/v1/chat/completions') }, { key: 'x-a', value: 'text' }, { key: 'x-a', raw_value: Buffer.from('bytes é') }, { key: 'empty' }] } } })]).subarray(7);
    const msg = decodeProcessingRequest(frame);
    const packed = msg.request_headers!.packed!;
    expect(packed.values.buffer).not.toBe(frame.buffer);
    const view = new HeaderView(packed);
    expect(view.get(':path')).toBe('/v1/chat/completions');
    expect(view.getAll('x-a')).toEqual(['text', 'bytes é']);
    expect(view.get('empty')).toBe('');
    expect(view.has('empty')).toBe(true);
    expect(view.has('nope')).toBe(false);
    expect(view.size).toBe(4);
    expect(view.names()).toEqual([':path', 'x-a', 'x-a', 'empty']);
  });

  it('refuses malformed bytes: truncated fields, lengths past the end, invalid wire types', () => {
    const good = encode({ request_headers: { headers: { headers: [{ key: ':path', raw_value: Buffer.from('/v1/messages') }] }, end_of_stream: true } });
    for (let cut = 1; cut < good.length; cut++) expect(() => decodeProcessingRequest(good.subarray(0, cut)), `cut at ${cut}`).toThrow();
    expect(() => decodeProcessingRequest(Buffer.from([0x2a, 0x05, 0x0a, 0x10, 0x41]))).toThrow(); // body longer than its message
    expect(() => decodeProcessingRequest(Buffer.from([0x0e, 0x00]))).toThrow(); // wire type 6
    expect(() => decodeProcessingRequest(Buffer.from([0x12, 0x02, 0xff, 0xff]))).toThrow(); // varint past the end
    // A nested message whose last field runs past the length it declared: protocol_config of one
    // byte holding a two-byte field, and an attribute whose struct says 2 bytes but holds 7.
    expect(() => decodeProcessingRequest(Buffer.from([0x5a, 0x01, 0x08, 0x01]))).toThrow();
    const entry = [0x0a, 0x01, 0x6b, 0x12, 0x02, 0x0a, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65];
    expect(() => decodeProcessingRequest(Buffer.from([0x4a, entry.length, ...entry]))).toThrow();
  });
});
