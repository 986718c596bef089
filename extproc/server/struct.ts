/**
 * @module server/struct
 * google.protobuf.Struct ↔ plain JSON, for attributes, metadata_context and dynamic_metadata.
 */
import type { MetadataValue } from '../pipeline/output.js';
import type { PbStruct, PbValue } from './protocol.js';

/** Decoded Struct → plain object. */
export function structToJson(struct: PbStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: PbValue): unknown {
  switch (v.kind) {
    case 'numberValue':
      return v.numberValue ?? 0;
    case 'stringValue':
      return v.stringValue ?? '';
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

/** Plain object → Struct for encoding. */
export function jsonToStruct(obj: Record<string, MetadataValue>): PbStruct {
  const fields: Record<string, PbValue> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = jsonToValue(v);
  return { fields };
}

function jsonToValue(v: MetadataValue): PbValue {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  return { structValue: jsonToStruct(v) };
}
