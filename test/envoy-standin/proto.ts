/**
 * Loads our wire-compatible ext_proc v3 protos (protos/) and gives typed shapes for the messages
 * the stand-in exchanges, as @grpc/proto-loader decodes them with
 * `{keepCase, longs: String, enums: String, defaults: false, oneofs: true}`: absent fields are
 * `undefined` (so presence can be tested like Envoy's `has_xxx()`), oneofs carry a virtual
 * property naming the set member, bytes are Buffers, enums are names (or numbers when unknown).
 *
 * Also converts google.protobuf.Struct <-> plain JSON, and envoy.type.v3.StatusCode names <-> codes.
 *
 * Deliberately independent of extproc/server (protocol.ts, struct.ts): the stand-in plays Envoy,
 * the other side of the wire, so a decoding bug in the server must not be mirrored here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (two levels above test/envoy-standin/). */
export const repoRoot = path.resolve(here, '..', '..');
export const protosDir = path.join(repoRoot, 'protos');
export const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';
/** client_impl.cc: kExternalMethod = "envoy.service.ext_proc.v3.ExternalProcessor.Process". */
export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

// ---- message shapes (subset used by the stand-in and its tests) -------------------------------

/**
 * google.protobuf.Value. protobufjs bundles google/protobuf/struct.proto with camelCase field names
 * (`stringValue`, ...), which keepCase leaves as they are, so Values are camelCase on both sides.
 */
export interface PbValue {
  kind?: string;
  nullValue?: string | number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: PbStruct;
  listValue?: { values?: PbValue[] };
}
export interface PbStruct {
  fields?: Record<string, PbValue>;
}
export interface PbHeaderValue {
  key?: string;
  value?: string;
  raw_value?: Buffer;
}
export interface PbHeaderValueOption {
  header?: PbHeaderValue;
  append?: { value?: boolean };
  append_action?: string | number;
  keep_empty_value?: boolean;
}
export interface PbHeaderMap {
  headers?: PbHeaderValue[];
}
export interface PbHttpHeaders {
  headers?: PbHeaderMap;
  end_of_stream?: boolean;
}
export interface PbHttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}
export interface PbProcessingMode {
  request_header_mode?: string | number;
  response_header_mode?: string | number;
  request_body_mode?: string | number;
  response_body_mode?: string | number;
  request_trailer_mode?: string | number;
  response_trailer_mode?: string | number;
}
export interface PbProtocolConfiguration {
  request_body_mode?: string | number;
  response_body_mode?: string | number;
  send_body_without_waiting_for_header_response?: boolean;
}
/** envoy.service.ext_proc.v3.ProcessingRequest */
export interface ProcessingRequest {
  request?:
    | 'request_headers'
    | 'response_headers'
    | 'request_body'
    | 'response_body'
    | 'request_trailers'
    | 'response_trailers';
  request_headers?: PbHttpHeaders;
  response_headers?: PbHttpHeaders;
  request_body?: PbHttpBody;
  response_body?: PbHttpBody;
  request_trailers?: { trailers?: PbHeaderMap };
  response_trailers?: { trailers?: PbHeaderMap };
  metadata_context?: { filter_metadata?: Record<string, PbStruct> };
  attributes?: Record<string, PbStruct>;
  observability_mode?: boolean;
  protocol_config?: PbProtocolConfiguration;
}
export interface PbHeaderMutation {
  set_headers?: PbHeaderValueOption[];
  remove_headers?: string[];
}
export interface PbBodyMutation {
  mutation?: 'body' | 'clear_body' | 'streamed_response';
  body?: Buffer | Uint8Array | string;
  clear_body?: boolean;
  streamed_response?: unknown;
}
export interface PbCommonResponse {
  status?: string | number;
  header_mutation?: PbHeaderMutation;
  body_mutation?: PbBodyMutation;
  trailers?: PbHeaderMap;
  clear_route_cache?: boolean;
}
export interface PbImmediateResponse {
  status?: { code?: string | number };
  headers?: PbHeaderMutation;
  body?: Buffer | Uint8Array | string;
  grpc_status?: { status?: number };
  details?: string;
}
/** envoy.service.ext_proc.v3.ProcessingResponse */
export interface ProcessingResponse {
  response?:
    | 'request_headers'
    | 'response_headers'
    | 'request_body'
    | 'response_body'
    | 'request_trailers'
    | 'response_trailers'
    | 'immediate_response'
    | 'streamed_immediate_response';
  request_headers?: { response?: PbCommonResponse };
  response_headers?: { response?: PbCommonResponse };
  request_body?: { response?: PbCommonResponse };
  response_body?: { response?: PbCommonResponse };
  request_trailers?: { header_mutation?: PbHeaderMutation };
  response_trailers?: { header_mutation?: PbHeaderMutation };
  immediate_response?: PbImmediateResponse;
  streamed_immediate_response?: unknown;
  dynamic_metadata?: PbStruct;
  mode_override?: PbProcessingMode;
  override_message_timeout?: { seconds?: string | number; nanos?: number };
  request_drain?: boolean;
}

// ---- loading ----------------------------------------------------------------------------------

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [protosDir],
};

let cached: { def: protoLoader.PackageDefinition; service: grpc.ServiceClientConstructor } | undefined;

function load() {
  if (!cached) {
    const def = protoLoader.loadSync(EXT_PROC_PROTO, PROTO_LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      envoy: { service: { ext_proc: { v3: { ExternalProcessor: grpc.ServiceClientConstructor } } } };
    };
    cached = { def, service: pkg.envoy.service.ext_proc.v3.ExternalProcessor };
  }
  return cached;
}

/** The generated client constructor for envoy.service.ext_proc.v3.ExternalProcessor. */
export function extProcClientConstructor(): grpc.ServiceClientConstructor {
  return load().service;
}

/** The service definition, for a grpc.Server (tests' scripted processors). */
export function extProcServiceDefinition(): grpc.ServiceDefinition {
  return load().service.service;
}

let statusCodes: { byName: Map<string, number>; byNumber: Map<number, string> } | undefined;

function statusCodeTables() {
  if (!statusCodes) {
    const enumDef = load().def['envoy.type.v3.StatusCode'] as unknown as {
      type: { value: { name: string; number: number }[] };
    };
    const byName = new Map<string, number>();
    const byNumber = new Map<number, string>();
    for (const v of enumDef.type.value) {
      byName.set(v.name, v.number);
      byNumber.set(v.number, v.name);
    }
    statusCodes = { byName, byNumber };
  }
  return statusCodes;
}

/** envoy.type.v3.StatusCode as decoded (name, or number for values outside the enum) → number. */
export function statusCodeNumber(code: string | number | undefined): number | undefined {
  if (code === undefined) return undefined;
  if (typeof code === 'number') return code;
  const n = statusCodeTables().byName.get(code);
  if (n !== undefined) return n;
  const parsed = Number(code);
  return Number.isInteger(parsed) ? parsed : undefined;
}

/** Enum values as decoded with `enums: String` (name) or as sent by a test (name or number). */
export function enumName(value: string | number | undefined, names: readonly string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return names[value] ?? String(value);
  return value;
}

// ---- google.protobuf.Struct <-> JSON -----------------------------------------------------------

export function valueToJson(v: PbValue | undefined): JsonValue {
  if (!v) return null;
  const kind =
    v.kind ??
    (v.stringValue !== undefined
      ? 'stringValue'
      : v.numberValue !== undefined
        ? 'numberValue'
        : v.boolValue !== undefined
          ? 'boolValue'
          : v.structValue !== undefined
            ? 'structValue'
            : v.listValue !== undefined
              ? 'listValue'
              : 'nullValue');
  switch (kind) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'numberValue':
      return v.numberValue ?? 0;
    case 'boolValue':
      return v.boolValue ?? false;
    case 'structValue':
      return structToJson(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

export function structToJson(s: PbStruct | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

export function jsonToValue(v: JsonValue): PbValue {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  return { structValue: jsonToStruct(v) };
}

export function jsonToStruct(o: JsonObject): PbStruct {
  const fields: Record<string, PbValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = jsonToValue(v);
  return { fields };
}

/** Bytes fields may arrive as Buffer, Uint8Array or (from a test) a string. */
export function toBuffer(b: Buffer | Uint8Array | string | undefined): Buffer {
  if (b === undefined) return Buffer.alloc(0);
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  return Buffer.isBuffer(b) ? b : Buffer.from(b);
}
