/**
 * @module server/wireDecode
 * Decodes a ProcessingRequest straight from its protobuf bytes into the shape proto-loader
 * gives (protos/, `protoLoaderOptions`), with one difference: a header block comes packed
 * (`PbHttpHeaders.packed`: names, and every value's bytes in one buffer of its own) instead of
 * an object and a Buffer per header.
 *
 * Why not protobufjs: this runs for every message of every request (~50 per streamed answer).
 * protobufjs decodes into message objects and then copies them into plain objects (`toObject`),
 * and each header value it returns is a view on the gRPC frame's pooled 8 KB slab, which stays
 * alive as long as the exchange keeps its headers: about a third of what a stream keeps live,
 * paid again by every young-generation GC. Header names repeat from request to request, so they
 * are interned (bounded) instead of decoded each time.
 *
 * Only what the gateway reads is decoded (field numbers from protos/, checked against Envoy's
 * protos by test/protocol); unknown fields are skipped by wire type, as every protobuf decoder
 * does. Malformed bytes throw (the caller falls back to protobufjs, then to UNDECODABLE).
 */
import type { PackedHeaders } from '../pipeline/headers.js';
import type { PbHttpBody, PbHttpHeaders, PbProcessingRequest, PbStruct, PbValue, RequestKind } from './protocol.js';

const KINDS: readonly (RequestKind | undefined)[] = [
  undefined,
  undefined,
  'request_headers',
  'response_headers',
  'request_body',
  'response_body',
  'request_trailers',
  'response_trailers',
];

/** ProcessingMode.BodySendMode names (processing_mode.proto), as proto-loader gives enums. */
const BODY_SEND_MODES = ['NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL', 'FULL_DUPLEX_STREAMED', 'GRPC'];

class WireError extends Error {}

const EMPTY = Buffer.alloc(0);

/** A cursor over protobuf bytes (one, reused: decoding is synchronous). */
class Reader {
  buf: Buffer = EMPTY;
  pos = 0;
  end = 0;

  reset(buf: Buffer): this {
    this.buf = buf;
    this.pos = 0;
    this.end = buf.length;
    return this;
  }

  /** A varint of at most 32 significant bits (tags, lengths, enums, bools). */
  uint32(): number {
    const buf = this.buf;
    let pos = this.pos;
    let b = buf[pos++]!;
    let v = b & 0x7f;
    if (b >= 0x80) {
      b = buf[pos++]!;
      v |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = buf[pos++]!;
        v |= (b & 0x7f) << 14;
        if (b >= 0x80) {
          b = buf[pos++]!;
          v |= (b & 0x7f) << 21;
          if (b >= 0x80) {
            b = buf[pos++]!;
            v |= (b & 0x0f) << 28;
            // A longer varint (a negative int32 or a 64-bit value): its upper bits are dropped.
            while (b >= 0x80 && pos < this.end) b = buf[pos++]!;
            if (b >= 0x80) throw new WireError('varint runs past the end');
          }
        }
      }
    }
    if (pos > this.end) throw new WireError('varint runs past the end');
    this.pos = pos;
    return v >>> 0;
  }

  /** The end offset of a length-delimited field starting at the cursor (which moves past the length). */
  delimited(): number {
    const len = this.uint32();
    const end = this.pos + len;
    if (end > this.end) throw new WireError('length-delimited field runs past the end');
    return end;
  }

  /** Checks that a nested message ended where its length said (a field inside ran past it: malformed). */
  leave(end: number): void {
    if (this.pos !== end) throw new WireError('nested message overruns its length');
  }

  string(): string {
    const end = this.delimited();
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  /** The bytes of a length-delimited field: a view on the message, not a copy. */
  bytes(): Buffer {
    const end = this.delimited();
    const b = this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new WireError('double runs past the end');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        while (this.buf[this.pos++]! >= 0x80) if (this.pos >= this.end) throw new WireError('varint runs past the end');
        break;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        break;
      case 3:
        // A group (proto2, never sent by Envoy): skip to its end tag.
        for (;;) {
          const tag = this.uint32();
          if ((tag & 7) === 4) break;
          this.skip(tag & 7);
        }
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new WireError(`invalid wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new WireError('field runs past the end');
  }
}

/**
 * Header names seen before, by a hash of their bytes: a mesh sends the same few dozen names on
 * every request. Bounded, so a client inventing names cannot grow it; past the bound a name is
 * decoded as any string.
 */
const MAX_INTERNED = 2048;
const interned = new Map<number, { bytes: Buffer; name: string }[]>();
let internedCount = 0;

/** `a` equals `buf[start, end)` (names are short: a loop beats a call into C++). */
function sameBytes(a: Buffer, buf: Buffer, start: number, end: number): boolean {
  if (a.length !== end - start) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== buf[start + i]) return false;
  return true;
}

function headerName(buf: Buffer, start: number, end: number): string {
  let h = 0x811c9dc5 ^ (end - start);
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const bucket = interned.get(h);
  if (bucket !== undefined) {
    for (let k = 0; k < bucket.length; k++) {
      const c = bucket[k]!;
      if (sameBytes(c.bytes, buf, start, end)) return c.name;
    }
  }
  const name = buf.toString('utf8', start, end);
  if (internedCount < MAX_INTERNED) {
    internedCount++;
    const entry = { bytes: Buffer.from(name, 'utf8'), name };
    if (bucket === undefined) interned.set(h, [entry]);
    else bucket.push(entry);
  }
  return name;
}

/**
 * HeaderMap (config.core.v3): `repeated HeaderValue headers = 1`, HeaderValue {key = 1,
 * value = 2, raw_value = 3}. A value is `raw_value` when it is not empty, else `value` (Envoy
 * sends one of the two). The map's bytes are copied once into a buffer of their own and the
 * values located in it.
 */
function headerMap(r: Reader, end: number): PackedHeaders {
  const buf = r.buf;
  const base = r.pos;
  const names: string[] = [];
  // Value ranges relative to `base`: start, end per header.
  const ranges: number[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const hEnd = r.delimited();
    let name = '';
    let rawStart = 0;
    let rawEnd = 0;
    let textStart = 0;
    let textEnd = 0;
    while (r.pos < hEnd) {
      const t = r.uint32();
      if (t === 0x0a) {
        const kEnd = r.delimited();
        name = headerName(buf, r.pos, kEnd);
        r.pos = kEnd;
      } else if (t === 0x12) {
        textEnd = r.delimited();
        textStart = r.pos;
        r.pos = textEnd;
      } else if (t === 0x1a) {
        rawEnd = r.delimited();
        rawStart = r.pos;
        r.pos = rawEnd;
      } else r.skip(t & 7);
    }
    r.leave(hEnd);
    names.push(name);
    if (rawEnd > rawStart) ranges.push(rawStart - base, rawEnd - base);
    else if (textEnd > textStart) ranges.push(textStart - base, textEnd - base);
    else ranges.push(0, 0);
  }
  // A buffer of its own, not a view on the gRPC frame (a slice of a pooled slab that would stay
  // alive with the exchange).
  const values = Buffer.allocUnsafeSlow(end - base);
  buf.copy(values, 0, base, end);
  return { names, values, bounds: Uint32Array.from(ranges) };
}

/** HttpHeaders {headers = 1 (HeaderMap), attributes = 2 (deprecated, skipped), end_of_stream = 3}; HttpTrailers {trailers = 1}. */
function httpHeaders(r: Reader, end: number): PbHttpHeaders {
  const out: PbHttpHeaders = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x0a) {
      const mEnd = r.delimited();
      out.packed = headerMap(r, mEnd);
      r.leave(mEnd);
    } else if (tag === 0x18) out.end_of_stream = r.uint32() !== 0;
    else r.skip(tag & 7);
  }
  return out;
}

/** HttpBody {body = 1, end_of_stream = 2, end_of_stream_without_message = 3, grpc_message_compressed = 4}. */
function httpBody(r: Reader, end: number): PbHttpBody {
  const out: PbHttpBody = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x0a) out.body = r.bytes();
    else if (tag === 0x10) out.end_of_stream = r.uint32() !== 0;
    else r.skip(tag & 7);
  }
  return out;
}

/** google.protobuf.Struct {map<string, Value> fields = 1}, in protobufjs's shape (see server/struct). */
function struct(r: Reader, end: number): PbStruct {
  const fields: Record<string, PbValue> = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const eEnd = r.delimited();
    let key = '';
    let value: PbValue = {};
    while (r.pos < eEnd) {
      const t = r.uint32();
      if (t === 0x0a) key = r.string();
      else if (t === 0x12) value = protoValue(r, r.delimited());
      else r.skip(t & 7);
    }
    r.leave(eEnd);
    fields[key] = value;
  }
  return { fields };
}

/** google.protobuf.Value: oneof kind {null_value = 1, number_value = 2, string_value = 3, bool_value = 4, struct_value = 5, list_value = 6}. */
function protoValue(r: Reader, end: number): PbValue {
  let v: PbValue = {};
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 0x08:
        r.uint32();
        v = { kind: 'nullValue', nullValue: 'NULL_VALUE' };
        break;
      case 0x11:
        v = { kind: 'numberValue', numberValue: r.double() };
        break;
      case 0x1a:
        v = { kind: 'stringValue', stringValue: r.string() };
        break;
      case 0x20:
        v = { kind: 'boolValue', boolValue: r.uint32() !== 0 };
        break;
      case 0x2a: {
        const sEnd = r.delimited();
        v = { kind: 'structValue', structValue: struct(r, sEnd) };
        r.leave(sEnd);
        break;
      }
      case 0x32: {
        const lEnd = r.delimited();
        const values: PbValue[] = [];
        while (r.pos < lEnd) {
          const t = r.uint32();
          if (t === 0x0a) values.push(protoValue(r, r.delimited()));
          else r.skip(t & 7);
        }
        r.leave(lEnd);
        v = { kind: 'listValue', listValue: { values } };
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  r.leave(end);
  return v;
}

/** map<string, google.protobuf.Struct>: an entry {key = 1, value = 2} ending at `end`. */
function structMapEntry(r: Reader, end: number, into: Record<string, PbStruct>): void {
  let key = '';
  let value: PbStruct = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 0x0a) key = r.string();
    else if (t === 0x12) {
      const sEnd = r.delimited();
      value = struct(r, sEnd);
      r.leave(sEnd);
    } else r.skip(t & 7);
  }
  r.leave(end);
  into[key] = value;
}

const reader = new Reader();

/** Decodes one ProcessingRequest (external_processor.proto). Throws on malformed bytes. */
export function decodeProcessingRequest(buf: Buffer): PbProcessingRequest {
  try {
    return decodeWith(reader.reset(buf));
  } finally {
    // Not kept past the call: the message must not stay referenced by the shared reader.
    reader.buf = EMPTY;
  }
}

function decodeWith(r: Reader): PbProcessingRequest {
  const msg: PbProcessingRequest = {};
  while (r.pos < r.end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field >= 2 && field <= 7 && wireType === 2) {
      const kind = KINDS[field]!;
      const end = r.delimited();
      // Oneof `request`: the last member on the wire wins.
      if (msg.request !== undefined) delete msg[msg.request];
      msg.request = kind;
      if (field === 4 || field === 5) msg[kind as 'request_body'] = httpBody(r, end);
      else msg[kind as 'request_headers'] = httpHeaders(r, end);
      r.leave(end);
    } else if (tag === 0x42) {
      // metadata_context: Metadata {filter_metadata = 1 (map<string, Struct>)}.
      const end = r.delimited();
      const filter_metadata: Record<string, PbStruct> = (msg.metadata_context?.filter_metadata ?? {});
      while (r.pos < end) {
        const t = r.uint32();
        if (t === 0x0a) structMapEntry(r, r.delimited(), filter_metadata);
        else r.skip(t & 7);
      }
      r.leave(end);
      msg.metadata_context = { filter_metadata };
    } else if (tag === 0x4a) {
      structMapEntry(r, r.delimited(), (msg.attributes ??= {}));
    } else if (tag === 0x50) {
      msg.observability_mode = r.uint32() !== 0;
    } else if (tag === 0x5a) {
      const end = r.delimited();
      const pc: NonNullable<PbProcessingRequest['protocol_config']> = {};
      while (r.pos < end) {
        const t = r.uint32();
        if (t === 0x08) pc.request_body_mode = bodySendMode(r.uint32());
        else if (t === 0x10) pc.response_body_mode = bodySendMode(r.uint32());
        else if (t === 0x18) pc.send_body_without_waiting_for_header_response = r.uint32() !== 0;
        else r.skip(t & 7);
      }
      r.leave(end);
      msg.protocol_config = pc;
    } else {
      if (field === 0) throw new WireError('field number 0');
      r.skip(wireType);
    }
  }
  r.leave(r.end);
  return msg;
}

/** An enum value by its name, as proto-loader gives enums; an unknown number as its digits. */
function bodySendMode(n: number): string {
  return BODY_SEND_MODES[n] ?? String(n);
}
