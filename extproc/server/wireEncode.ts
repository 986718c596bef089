/**
 * @module server/wireEncode
 * Encodes the ProcessingResponse objects server/encode builds (proto-loader's object shape) into
 * protobuf bytes, in two passes: sizes first (kept in order on a stack), then one buffer of the
 * exact size written once. protobufjs first copies the object into message instances and
 * queues an operation object per field; this runs for every answer that is not a constant
 * (about four per request: routing, rate-limit headers, metadata).
 *
 * Only the fields the gateway sends are known here (field numbers from protos/, checked against
 * Envoy's by test/protocol); any other key throws `UnsupportedField` and the caller lets
 * protobufjs encode that message.
 */

export class UnsupportedField extends Error {}

type Obj = Record<string, unknown>;

const HEADER_SEND_MODE: Record<string, number> = { DEFAULT: 0, SEND: 1, SKIP: 2 };
const BODY_SEND_MODE: Record<string, number> = { NONE: 0, STREAMED: 1, BUFFERED: 2, BUFFERED_PARTIAL: 3, FULL_DUPLEX_STREAMED: 4, GRPC: 5 };
const RESPONSE_STATUS: Record<string, number> = { CONTINUE: 0, CONTINUE_AND_REPLACE: 1 };

/** Field number of each ProcessingResponse member (external_processor.proto), in write order. */
const RESPONSE_FIELDS: readonly [string, number][] = [
  ['request_headers', 1],
  ['response_headers', 2],
  ['request_body', 3],
  ['response_body', 4],
  ['request_trailers', 5],
  ['response_trailers', 6],
  ['immediate_response', 7],
  ['dynamic_metadata', 8],
  ['mode_override', 9],
  ['override_message_timeout', 10],
];
const RESPONSE_KEYS = new Set(RESPONSE_FIELDS.map(([k]) => k));

function unsupported(what: string): never {
  throw new UnsupportedField(what);
}

function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Size of a length-delimited field of a one-byte tag (every field number here is < 16). */
function delimitedSize(len: number): number {
  return 1 + varintSize(len) + len;
}

function enumValue(v: unknown, names: Record<string, number>): number {
  if (typeof v === 'string') {
    const n = names[v];
    if (n === undefined) unsupported(`enum value ${v}`);
    return n;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31) return v;
  return unsupported('enum value');
}

/**
 * Pass 1 records, in the order pass 2 needs them, the length of every nested message and the
 * UTF-8 length of every string; pass 2 reads them back with `next()`.
 */
class Sizes {
  private readonly list: number[] = [];
  private at = 0;

  reset(): void {
    this.list.length = 0;
    this.at = 0;
  }
  /** Reserves a slot to fill once a nested message's size is known. */
  open(): number {
    this.list.push(0);
    return this.list.length - 1;
  }
  close(slot: number, size: number): number {
    this.list[slot] = size;
    return size;
  }
  push(n: number): number {
    this.list.push(n);
    return n;
  }
  next(): number {
    return this.list[this.at++]!;
  }
}

// ---- pass 1: sizes -------------------------------------------------------------------------

/** Strings up to this length are measured and written in JS when ASCII (cheaper than a call into C++). */
const SHORT = 64;

/** UTF-8 length of `s`. */
function utf8Length(s: string): number {
  if (s.length <= SHORT) {
    let i = 0;
    while (i < s.length && s.charCodeAt(i) < 0x80) i++;
    if (i === s.length) return i;
  }
  return Buffer.byteLength(s, 'utf8');
}

function sizeString(s: unknown, z: Sizes): number {
  if (typeof s !== 'string') unsupported('string field');
  return delimitedSize(z.push(utf8Length(s)));
}

/** Bytes fields take Buffers only: protobufjs reads a string there as base64, not as text. */
function sizeBytes(b: unknown): number {
  if (Buffer.isBuffer(b)) return delimitedSize(b.length);
  return unsupported('bytes field');
}

/** A nested message field: its size recorded, the field's size returned. */
function sizeNested(v: unknown, z: Sizes, inner: (o: Obj, z: Sizes) => number): number {
  if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) unsupported('message field');
  const slot = z.open();
  return delimitedSize(z.close(slot, inner(v as Obj, z)));
}

/**
 * Throws unless every key of `o` is one of `known`. Fields are then sized and written in their
 * declaration order (as protobufjs writes them), whatever the object's key order.
 */
function only(o: Obj, known: ReadonlySet<string>, message: string): void {
  for (const k in o) if (!known.has(k)) unsupported(`${message}.${k}`);
}
const HEADER_VALUE = new Set(['key', 'value', 'raw_value']);
const HEADER_VALUE_OPTION = new Set(['header']);
const HEADER_MUTATION = new Set(['set_headers', 'remove_headers']);
const BODY_MUTATION = new Set(['body', 'clear_body']);
const COMMON_RESPONSE = new Set(['status', 'header_mutation', 'body_mutation', 'clear_route_cache']);
const IMMEDIATE = new Set(['status', 'headers', 'body', 'details']);

function sizeHeaderValue(o: Obj, z: Sizes): number {
  only(o, HEADER_VALUE, 'HeaderValue');
  let n = 0;
  if (o['key'] !== undefined) n += sizeString(o['key'], z);
  if (o['value'] !== undefined) n += sizeString(o['value'], z);
  if (o['raw_value'] !== undefined) n += sizeBytes(o['raw_value']);
  return n;
}

function sizeHeaderValueOption(o: Obj, z: Sizes): number {
  only(o, HEADER_VALUE_OPTION, 'HeaderValueOption');
  return o['header'] !== undefined ? sizeNested(o['header'], z, sizeHeaderValue) : 0;
}

function sizeHeaderMutation(o: Obj, z: Sizes): number {
  only(o, HEADER_MUTATION, 'HeaderMutation');
  let n = 0;
  const set = o['set_headers'];
  if (set !== undefined) {
    if (!Array.isArray(set)) unsupported('set_headers');
    for (const h of set) n += sizeNested(h, z, sizeHeaderValueOption);
  }
  const remove = o['remove_headers'];
  if (remove !== undefined) {
    if (!Array.isArray(remove)) unsupported('remove_headers');
    for (const s of remove) n += sizeString(s, z);
  }
  return n;
}

function sizeBodyMutation(o: Obj, z: Sizes): number {
  only(o, BODY_MUTATION, 'BodyMutation');
  let n = 0;
  if (o['body'] !== undefined) n += sizeBytes(o['body']);
  if (o['clear_body'] !== undefined) n += 2;
  return n;
}

function sizeCommonResponse(o: Obj, z: Sizes): number {
  only(o, COMMON_RESPONSE, 'CommonResponse');
  let n = 0;
  if (o['status'] !== undefined) n += 1 + varintSize(enumValue(o['status'], RESPONSE_STATUS));
  if (o['header_mutation'] !== undefined) n += sizeNested(o['header_mutation'], z, sizeHeaderMutation);
  if (o['body_mutation'] !== undefined) n += sizeNested(o['body_mutation'], z, sizeBodyMutation);
  if (o['clear_route_cache'] !== undefined) n += 2;
  return n;
}

/** A message whose one field (number 1) is the nested message `key`: HeadersResponse, BodyResponse, TrailersResponse. */
function sizeWrapper(o: Obj, z: Sizes, key: string, inner: (o: Obj, z: Sizes) => number, message: string): number {
  let n = 0;
  for (const k in o) {
    if (k === key) n += sizeNested(o[k], z, inner);
    else unsupported(`${message}.${k}`);
  }
  return n;
}

function sizeHttpStatus(o: Obj): number {
  let n = 0;
  for (const k in o) {
    if (k === 'code') n += 1 + varintSize(enumValue(o[k], {}));
    else unsupported(`HttpStatus.${k}`);
  }
  return n;
}

function sizeImmediate(o: Obj, z: Sizes): number {
  only(o, IMMEDIATE, 'ImmediateResponse');
  let n = 0;
  if (o['status'] !== undefined) n += sizeNested(o['status'], z, sizeHttpStatus);
  if (o['headers'] !== undefined) n += sizeNested(o['headers'], z, sizeHeaderMutation);
  if (o['body'] !== undefined) n += sizeBytes(o['body']);
  if (o['details'] !== undefined) n += sizeString(o['details'], z);
  return n;
}

function sizeStruct(o: Obj, z: Sizes): number {
  let n = 0;
  for (const k in o) {
    if (k !== 'fields') unsupported(`Struct.${k}`);
    const fields = o[k] as Obj;
    if (typeof fields !== 'object' || fields === null) unsupported('Struct.fields');
    for (const key in fields) {
      const slot = z.open();
      n += delimitedSize(z.close(slot, sizeString(key, z) + sizeNested(fields[key], z, sizeValue)));
    }
  }
  return n;
}

function sizeValue(o: Obj, z: Sizes): number {
  let n = 0;
  for (const k in o) {
    const v = o[k];
    if (k === 'nullValue') n += 2;
    else if (k === 'numberValue') {
      if (typeof v !== 'number') unsupported('numberValue');
      n += 9;
    } else if (k === 'stringValue') n += sizeString(v, z);
    else if (k === 'boolValue') n += 2;
    else if (k === 'structValue') n += sizeNested(v, z, sizeStruct);
    else if (k === 'listValue') n += sizeNested(v, z, sizeList);
    else unsupported(`Value.${k}`);
  }
  return n;
}

function sizeList(o: Obj, z: Sizes): number {
  let n = 0;
  for (const k in o) {
    if (k !== 'values' || !Array.isArray(o[k])) unsupported(`ListValue.${k}`);
    for (const v of o[k] as unknown[]) n += sizeNested(v, z, sizeValue);
  }
  return n;
}

const MODE_FIELDS: Record<string, [number, Record<string, number>]> = {
  request_header_mode: [1, HEADER_SEND_MODE],
  response_header_mode: [2, HEADER_SEND_MODE],
  request_body_mode: [3, BODY_SEND_MODE],
  response_body_mode: [4, BODY_SEND_MODE],
  request_trailer_mode: [5, HEADER_SEND_MODE],
  response_trailer_mode: [6, HEADER_SEND_MODE],
};
const MODE_ORDER = Object.keys(MODE_FIELDS);

function sizeMode(o: Obj): number {
  let n = 0;
  for (const k in o) {
    const f = MODE_FIELDS[k];
    if (f === undefined) unsupported(`ProcessingMode.${k}`);
    if (o[k] !== undefined) n += 1 + varintSize(enumValue(o[k], f[1]));
  }
  return n;
}

function durationPart(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 2 ** 31) unsupported('Duration field');
  return v;
}

function sizeDuration(o: Obj): number {
  let n = 0;
  for (const k in o) {
    if (k === 'seconds' || k === 'nanos') n += 1 + varintSize(durationPart(o[k]));
    else unsupported(`Duration.${k}`);
  }
  return n;
}

// ---- pass 2: bytes -------------------------------------------------------------------------

class Out {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(n: number): void {
    const buf = this.buf;
    while (n >= 0x80) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }
  string(tag: number, s: string, z: Sizes): void {
    const len = z.next();
    this.byte(tag);
    this.varint(len);
    if (len === s.length && len <= SHORT) {
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < len; i++) buf[pos++] = s.charCodeAt(i);
      this.pos = pos;
    } else this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }
  bytes(tag: number, b: Buffer): void {
    this.byte(tag);
    this.varint(b.length);
    if (b.length <= SHORT) {
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < b.length; i++) buf[pos++] = b[i]!;
      this.pos = pos;
    } else this.pos += b.copy(this.buf, this.pos);
  }
  /** Tag and recorded length of a nested message; its body follows. */
  nested(tag: number, z: Sizes): void {
    this.byte(tag);
    this.varint(z.next());
  }
}

function writeHeaderValue(o: Obj, w: Out, z: Sizes): void {
  if (o['key'] !== undefined) w.string(0x0a, o['key'] as string, z);
  if (o['value'] !== undefined) w.string(0x12, o['value'] as string, z);
  if (o['raw_value'] !== undefined) w.bytes(0x1a, o['raw_value'] as Buffer);
}

function writeHeaderMutation(o: Obj, w: Out, z: Sizes): void {
  for (const h of (o['set_headers'] as Obj[] | undefined) ?? []) {
    w.nested(0x0a, z);
    if (h['header'] === undefined) continue;
    w.nested(0x0a, z);
    writeHeaderValue(h['header'] as Obj, w, z);
  }
  for (const s of (o['remove_headers'] as string[] | undefined) ?? []) w.string(0x12, s, z);
}

function writeCommonResponse(o: Obj, w: Out, z: Sizes): void {
  if (o['status'] !== undefined) {
    w.byte(0x08);
    w.varint(enumValue(o['status'], RESPONSE_STATUS));
  }
  if (o['header_mutation'] !== undefined) {
    w.nested(0x12, z);
    writeHeaderMutation(o['header_mutation'] as Obj, w, z);
  }
  const m = o['body_mutation'] as Obj | undefined;
  if (m !== undefined) {
    w.nested(0x1a, z);
    if (m['body'] !== undefined) w.bytes(0x0a, m['body'] as Buffer);
    if (m['clear_body'] !== undefined) {
      w.byte(0x10);
      w.byte(m['clear_body'] ? 1 : 0);
    }
  }
  if (o['clear_route_cache'] !== undefined) {
    w.byte(0x28);
    w.byte(o['clear_route_cache'] ? 1 : 0);
  }
}

function writeStruct(o: Obj, w: Out, z: Sizes): void {
  const fields = o['fields'] as Obj | undefined;
  if (fields === undefined) return;
  for (const key in fields) {
    w.nested(0x0a, z);
    w.string(0x0a, key, z);
    w.nested(0x12, z);
    writeValue(fields[key] as Obj, w, z);
  }
}

function writeValue(o: Obj, w: Out, z: Sizes): void {
  for (const k in o) {
    const v = o[k];
    if (k === 'nullValue') {
      w.byte(0x08);
      w.byte(0);
    } else if (k === 'numberValue') {
      w.byte(0x11);
      w.pos = w.buf.writeDoubleLE(v as number, w.pos);
    } else if (k === 'stringValue') w.string(0x1a, v as string, z);
    else if (k === 'boolValue') {
      w.byte(0x20);
      w.byte(v ? 1 : 0);
    } else if (k === 'structValue') {
      w.nested(0x2a, z);
      writeStruct(v as Obj, w, z);
    } else {
      w.nested(0x32, z);
      for (const item of (v as { values: Obj[] }).values) {
        w.nested(0x0a, z);
        writeValue(item, w, z);
      }
    }
  }
}

/** Pass 2 of `sizeWrapper`. */
function writeWrapper(o: Obj, key: string, inner: (o: Obj, w: Out, z: Sizes) => void, w: Out, z: Sizes): void {
  if (o[key] === undefined) return;
  w.nested(0x0a, z);
  inner(o[key] as Obj, w, z);
}

function writeMember(key: string, v: Obj, w: Out, z: Sizes): void {
  switch (key) {
    case 'request_headers':
    case 'response_headers':
    case 'request_body':
    case 'response_body':
      return writeWrapper(v, 'response', writeCommonResponse, w, z);
    case 'request_trailers':
    case 'response_trailers':
      return writeWrapper(v, 'header_mutation', writeHeaderMutation, w, z);
    case 'immediate_response': {
      const status = v['status'] as Obj | undefined;
      if (status !== undefined) {
        w.nested(0x0a, z);
        if (status['code'] !== undefined) {
          w.byte(0x08);
          w.varint(enumValue(status['code'], {}));
        }
      }
      if (v['headers'] !== undefined) {
        w.nested(0x12, z);
        writeHeaderMutation(v['headers'] as Obj, w, z);
      }
      if (v['body'] !== undefined) w.bytes(0x1a, v['body'] as Buffer);
      if (v['details'] !== undefined) w.string(0x2a, v['details'] as string, z);
      return;
    }
    case 'dynamic_metadata':
      writeStruct(v, w, z);
      return;
    case 'mode_override':
      for (const k of MODE_ORDER) {
        if (v[k] === undefined) continue;
        const [field, names] = MODE_FIELDS[k]!;
        w.byte(field << 3);
        w.varint(enumValue(v[k], names));
      }
      return;
    default:
      if (v['seconds'] !== undefined) {
        w.byte(0x08);
        w.varint(v['seconds'] as number);
      }
      if (v['nanos'] !== undefined) {
        w.byte(0x10);
        w.varint(v['nanos'] as number);
      }
  }
}

function sizeMember(key: string, v: Obj, z: Sizes): number {
  switch (key) {
    case 'request_headers':
    case 'response_headers':
    case 'request_body':
    case 'response_body':
      return sizeWrapper(v, z, 'response', sizeCommonResponse, key);
    case 'request_trailers':
    case 'response_trailers':
      return sizeWrapper(v, z, 'header_mutation', sizeHeaderMutation, key);
    case 'immediate_response':
      return sizeImmediate(v, z);
    case 'dynamic_metadata':
      return sizeStruct(v, z);
    case 'mode_override':
      return sizeMode(v);
    default:
      return sizeDuration(v);
  }
}

const sizes = new Sizes();

/** ProcessingResponse object → bytes. Throws `UnsupportedField` for a field not listed here. */
export function encodeProcessingResponse(response: Obj): Buffer {
  for (const k in response) if (!RESPONSE_KEYS.has(k)) unsupported(`ProcessingResponse.${k}`);
  const z = sizes;
  z.reset();
  let total = 0;
  for (const [key] of RESPONSE_FIELDS) {
    const v = response[key];
    if (v === undefined) continue;
    if (typeof v !== 'object' || v === null) unsupported(key);
    const slot = z.open();
    total += delimitedSize(z.close(slot, sizeMember(key, v as Obj, z)));
  }
  const w = new Out(Buffer.allocUnsafe(total));
  for (const [key, field] of RESPONSE_FIELDS) {
    const v = response[key];
    if (v === undefined) continue;
    w.nested((field << 3) | 2, z);
    writeMember(key, v as Obj, w, z);
  }
  if (w.pos !== total) throw new Error(`ProcessingResponse encoder wrote ${w.pos} of ${total} bytes`);
  return w.buf;
}
