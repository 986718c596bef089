/**
 * @module server/encode
 * Pipeline decisions → ProcessingResponse. Rules it follows (envoy-ext-proc-facts.md):
 * header values only in `raw_value` (§1.3: with both set Envoy fails the request, with only
 * `value` it sets an empty header); `mode_override` only on header responses (§2.3);
 * `clear_route_cache` only together with a header mutation (§2.7); dynamic metadata as
 * `Struct{namespace: Struct}` (§2.10); a body replaced in a headers answer as
 * `CONTINUE_AND_REPLACE` (§1.1).
 */
import type { PhaseOutput } from '../pipeline/output.js';
import type { PbProcessingMode, PbProcessingResponse, RequestKind } from './protocol.js';
import { jsonToStruct } from './struct.js';

/** The response oneof member answering each request kind. */
export const responseKindFor: Record<RequestKind, string> = {
  request_headers: 'request_headers',
  response_headers: 'response_headers',
  request_body: 'request_body',
  response_body: 'response_body',
  request_trailers: 'request_trailers',
  response_trailers: 'response_trailers',
};

/**
 * `{ [kind]: inner }`, each kind written as a literal of its own: V8 defines a computed key
 * through a runtime call every time when the key varies, a literal key inline.
 */
function answerOf(kind: RequestKind, inner: Record<string, unknown>): Record<string, unknown> {
  switch (kind) {
    case 'request_headers':
      return { request_headers: inner };
    case 'response_headers':
      return { response_headers: inner };
    case 'request_body':
      return { request_body: inner };
    case 'response_body':
      return { response_body: inner };
    case 'request_trailers':
      return { request_trailers: inner };
    case 'response_trailers':
      return { response_trailers: inner };
  }
}

function headerMutation(out: PhaseOutput): Record<string, unknown> | undefined {
  if (out.setHeaders.size === 0 && out.removeHeaders.size === 0) return undefined;
  const set_headers = [];
  for (const [key, value] of out.setHeaders) set_headers.push({ header: { key, raw_value: Buffer.from(value) } });
  return { set_headers, remove_headers: [...out.removeHeaders] };
}

function dynamicMetadata(out: PhaseOutput): Record<string, unknown> | undefined {
  if (out.metadata.size === 0) return undefined;
  const namespaces: Record<string, Record<string, never>> = {};
  for (const [ns, values] of out.metadata) namespaces[ns] = values as Record<string, never>;
  return jsonToStruct(namespaces) as Record<string, unknown>;
}

/**
 * Encodes the answer to a message of `kind`. `modeOverride` is attached only to header
 * answers; trailers answers carry only header mutations (TrailersResponse has no CommonResponse).
 */
export function encodeResponse(kind: RequestKind, out: PhaseOutput, modeOverride?: PbProcessingMode): PbProcessingResponse {
  const metadata = dynamicMetadata(out);
  if (out.reply) return encodeImmediate(out, metadata);
  const mutation = headerMutation(out);
  let inner: Record<string, unknown>;
  if (kind === 'request_trailers' || kind === 'response_trailers') {
    inner = mutation ? { header_mutation: mutation } : {};
  } else {
    const common: Record<string, unknown> = {};
    if (mutation) common['header_mutation'] = mutation;
    if (out.body !== undefined) {
      common['body_mutation'] = out.body === null ? { clear_body: true } : { body: out.body };
      // A body mutation in a headers answer only takes effect with CONTINUE_AND_REPLACE
      // (external_processor.proto, CommonResponse.body_mutation); Envoy then sends no body
      // message for that direction and drops content-length (facts §1.1, §2.11).
      if (kind === 'request_headers' || kind === 'response_headers') common['status'] = 'CONTINUE_AND_REPLACE';
    }
    // Envoy ignores clear_route_cache without a header mutation in the same response.
    if (out.clearRouteCache && mutation) common['clear_route_cache'] = true;
    inner = Object.keys(common).length > 0 ? { response: common } : {};
  }
  const response = answerOf(kind, inner);
  if (metadata) response['dynamic_metadata'] = metadata;
  if (modeOverride && (kind === 'request_headers' || kind === 'response_headers')) response['mode_override'] = modeOverride;
  return response;
}

function encodeImmediate(out: PhaseOutput, metadata: Record<string, unknown> | undefined): PbProcessingResponse {
  const reply = out.reply!;
  const set_headers = Object.entries(reply.headers ?? {}).map(([key, value]) => ({
    header: { key: key.toLowerCase(), raw_value: Buffer.from(value) },
  }));
  const immediate: Record<string, unknown> = {
    status: { code: reply.status },
    body: typeof reply.body === 'string' ? Buffer.from(reply.body) : (reply.body ?? Buffer.alloc(0)),
  };
  if (set_headers.length > 0) immediate['headers'] = { set_headers };
  if (reply.details) immediate['details'] = reply.details;
  const response: Record<string, unknown> = { immediate_response: immediate };
  if (metadata) response['dynamic_metadata'] = metadata;
  return response;
}

/** What an answer does, for debug logs: names and sizes only, never values. */
export function describeDecision(o: PhaseOutput | undefined, override: PbProcessingMode | undefined): Record<string, string | number | boolean> {
  const d: Record<string, string | number | boolean> = {};
  if (override) d['mode_override'] = Object.entries(override).map(([k, v]) => `${k}=${v}`).join(',');
  if (!o) return d;
  if (o.reply) d['respond'] = o.reply.status;
  if (o.setHeaders.size > 0) d['set_headers'] = [...o.setHeaders.keys()].join(',');
  if (o.removeHeaders.size > 0) d['remove_headers'] = [...o.removeHeaders].join(',');
  if (o.body !== undefined) d['body'] = o.body === null ? 'cleared' : `replaced(${o.body.length} bytes)`;
  if (o.clearRouteCache) d['clear_route_cache'] = true;
  if (o.metadata.size > 0) d['metadata'] = [...o.metadata.keys()].join(',');
  return d;
}
