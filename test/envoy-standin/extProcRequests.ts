/**
 * Building the ProcessingRequests the ext_proc filter sends (ext_proc.cc buildHeaderRequest,
 * setupBodyChunk, addAttributes, addDynamicMetadata).
 */
import type { ExtProcConfig } from './config/index.js';
import type { ProcessorState } from './extProcState.js';
import type { FilterCallbacks } from './filterManager.js';
import type { HeaderMap } from './headers.js';
import { jsonToStruct, type JsonObject, type PbHttpBody, type PbHttpHeaders, type PbStruct, type ProcessingRequest } from './proto.js';

/** ext_proc.cc FilterName: the key of ProcessingRequest.attributes. */
export const EXT_PROC_FILTER_NAME = 'envoy.filters.http.ext_proc';

/** What request building reads from the filter. */
export interface RequestContext {
  readonly cb: FilterCallbacks;
  readonly config: ExtProcConfig;
  /** The response direction's state (its headers feed response.* attributes). */
  readonly encoding: ProcessorState;
}

/** Filter::addAttributes: once per direction, only if that direction has expressions. */
function addAttributes(f: RequestContext, state: ProcessorState, req: ProcessingRequest): void {
  const exprs = state.dir === 'request' ? f.config.requestAttributes : f.config.responseAttributes;
  if (state.sentAttributes || exprs.length === 0) return;
  const ctx = {
    requestHeaders: f.cb.requestHeaders(),
    responseHeaders: f.encoding.headerMap,
    routeName: f.cb.route()?.name,
    clusterName: f.cb.streamInfo.upstreamCluster,
    upstreamHostMetadata: f.cb.upstreamHost?.metadata,
  };
  const fields: JsonObject = {};
  for (const e of exprs) {
    const v = e.evaluate(ctx);
    if (v !== undefined) fields[e.text] = v;
  }
  state.sentAttributes = true;
  req.attributes = { [EXT_PROC_FILTER_NAME]: jsonToStruct(fields) };
}

/** Filter::addDynamicMetadata: forwarding namespaces of the stream's dynamic metadata, every message. */
function addDynamicMetadata(f: RequestContext, req: ProcessingRequest): void {
  const fm: Record<string, PbStruct> = {};
  for (const ns of f.config.forwardingNamespaces) {
    const v = f.cb.streamInfo.dynamicMetadata[ns];
    if (v) fm[ns] = jsonToStruct(v);
  }
  req.metadata_context = { filter_metadata: fm };
}

/** Filter::buildHeaderRequest (MutationUtils::headersToProto: lower-case keys, raw_value). */
export function buildHeadersRequest(
  f: RequestContext,
  state: ProcessorState,
  headers: HeaderMap,
  eos: boolean,
  observability: boolean,
): ProcessingRequest {
  const req: ProcessingRequest = {};
  if (observability) req.observability_mode = true;
  addAttributes(f, state, req);
  addDynamicMetadata(f, req);
  const h: PbHttpHeaders = { headers: { headers: headers.toProto() } };
  if (eos) h.end_of_stream = true;
  if (state.dir === 'request') req.request_headers = h;
  else req.response_headers = h;
  return req;
}

/** Filter::setupBodyChunk. */
export function setupBodyChunk(f: RequestContext, state: ProcessorState, data: Buffer, eos: boolean): ProcessingRequest {
  const req: ProcessingRequest = {};
  addAttributes(f, state, req);
  addDynamicMetadata(f, req);
  // Empty bytes / false are proto3 defaults: left off the wire, as Envoy's serializer does.
  const b: PbHttpBody = {};
  if (data.length > 0) b.body = data;
  if (eos) b.end_of_stream = true;
  if (state.dir === 'request') req.request_body = b;
  else req.response_body = b;
  return req;
}
