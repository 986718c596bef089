/**
 * @module server/decode
 * Reading the parts of a ProcessingRequest the pipeline uses, lazily where it can: header
 * blocks, Envoy's attributes and forwarded metadata, and which filter opened the stream.
 */
import type { Metadata } from '@grpc/grpc-js';
import { HeaderView } from '../pipeline/headers.js';
import type { FilterRole } from '../pipeline/stage.js';
import type { PbHttpHeaders, PbProcessingRequest } from './protocol.js';
import { structToJson } from './struct.js';

const NO_HEADERS: never[] = [];

/** The header block of a message, decoded lazily (Envoy sends names lower-cased). */
export function headersOf(h: PbHttpHeaders | undefined): HeaderView {
  if (h?.packed) return new HeaderView(h.packed);
  return new HeaderView(h?.headers?.headers ?? NO_HEADERS);
}

/** gRPC metadata key naming the filter role. */
export const FILTER_ROLE_METADATA = 'x-gateway-filter';

/**
 * Which ext_proc filter opened the stream. envoy/envoy.yaml tags the per-attempt upstream filter
 * with gRPC initial metadata `x-gateway-filter: attempt` (GrpcService.initial_metadata); the
 * HCM filter sends none.
 */
export function roleOf(metadata: Metadata): FilterRole {
  return metadata.get(FILTER_ROLE_METADATA)[0] === 'attempt' ? 'attempt' : 'router';
}

/** Forwarded dynamic metadata (`metadata_context.filter_metadata`): namespace → plain object. */
export function metadataOf(msg: PbProcessingRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [ns, struct] of Object.entries(msg.metadata_context?.filter_metadata ?? {})) out[ns] = structToJson(struct);
  return out;
}

/**
 * Envoy attributes, CEL expression → value. Envoy keys the struct by the filter name
 * "envoy.filters.http.ext_proc" (envoy-ext-proc-facts.md §2.10); entries of every key are merged.
 */
export function attributesOf(msg: PbProcessingRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const struct of Object.values(msg.attributes ?? {})) Object.assign(out, structToJson(struct));
  return out;
}
