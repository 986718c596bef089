/**
 * Handling one ProcessingResponse for one direction (processor_state.cc handleHeadersResponse /
 * handleBodyResponse, ext_proc.cc): checking it against the callback state, applying header and
 * body mutations, clearing the route cache, dynamic metadata, and mode_override.
 */
import type { BodySendMode, ExtProcConfig, ProcessingMode } from './config/index.js';
import { BODY_SEND_MODES, HEADER_SEND_MODES } from './config/index.js';
import type { ExtProcSession } from './extProcSession.js';
import { EMPTY, type ProcessorState } from './extProcState.js';
import { applyBodyMutation, applyHeaderMutations, bodyMutationLength } from './mutationRules.js';
import { enumName, structToJson, type PbCommonResponse, type PbProcessingMode, type ProcessingResponse } from './proto.js';

/** absl::Status as the ext_proc code uses it: FailedPrecondition marks a spurious message. */
export type Status = { ok: true } | { ok: false; spurious: boolean; message: string };
export const OK: Status = { ok: true };
export const spurious = (message: string): Status => ({ ok: false, spurious: true, message });
const failure = (message: string): Status => ({ ok: false, spurious: false, message });

/**
 * effectiveModeOverride (ext_proc.cc): DEFAULT header/trailer modes keep the configured mode;
 * body modes are always taken literally (facts §2.3).
 */
export function effectiveModeOverride(config: ExtProcConfig, target: PbProcessingMode): ProcessingMode {
  const m: ProcessingMode = { ...config.processingMode };
  const hdr = (v: string | number | undefined) => enumName(v, HEADER_SEND_MODES) as ProcessingMode['request_header_mode'] | undefined;
  const body = (v: string | number | undefined) => (enumName(v, BODY_SEND_MODES) ?? 'NONE') as BodySendMode;
  for (const k of ['request_header_mode', 'response_header_mode', 'request_trailer_mode', 'response_trailer_mode'] as const) {
    const v = hdr(target[k]);
    if (v && v !== 'DEFAULT') m[k] = v;
  }
  m.request_body_mode = body(target.request_body_mode);
  m.response_body_mode = body(target.response_body_mode);
  return m;
}

/** Whether an effective mode override is within allowed_override_modes (empty: any). */
export function modeOverrideAllowed(config: ExtProcConfig, m: ProcessingMode): boolean {
  return (
    config.allowedOverrideModes.length === 0 ||
    config.allowedOverrideModes.some(
      (o) =>
        // request_header_mode is ignored in the comparison
        o.request_body_mode === m.request_body_mode &&
        o.request_trailer_mode === m.request_trailer_mode &&
        o.response_header_mode === m.response_header_mode &&
        o.response_body_mode === m.response_body_mode &&
        o.response_trailer_mode === m.response_trailer_mode,
    )
  );
}

/** Filter::setDynamicMetadata: only receiving_namespaces.untyped are merged into StreamInfo. */
export function setDynamicMetadata(s: ExtProcSession, resp: ProcessingResponse): void {
  if (s.config.receivingNamespaces.length === 0 || !resp.dynamic_metadata) {
    if (resp.dynamic_metadata) s.stat('dynamic_metadata_dropped');
    return;
  }
  for (const [ns, v] of Object.entries(resp.dynamic_metadata.fields ?? {})) {
    if (s.config.receivingNamespaces.includes(ns)) {
      s.cb.streamInfo.setDynamicMetadata(ns, structToJson(v.structValue));
    } else {
      s.stat('dynamic_metadata_dropped');
    }
  }
}

/** DecodingProcessorState::clearRouteCache (facts §2.7). */
function clearRouteCache(s: ExtProcSession, state: ProcessorState, common: PbCommonResponse): void {
  const want = common.clear_route_cache === true;
  if (state.dir === 'response') {
    if (want) s.stat('clear_route_cache_ignored'); // encoding direction never clears
    return;
  }
  if (s.cb.isUpstream) {
    if (want) s.stat('clear_route_cache_upstream_ignored');
    return;
  }
  if (!common.header_mutation) {
    if (want) s.stat('clear_route_cache_ignored');
    return;
  }
  switch (s.config.routeCacheAction) {
    case 'DEFAULT':
      if (want) s.cb.clearRouteCache();
      break;
    case 'CLEAR':
      s.cb.clearRouteCache();
      break;
    case 'RETAIN':
      if (want) s.stat('clear_route_cache_disabled');
      break;
  }
}

function processHeaderMutation(s: ExtProcSession, state: ProcessorState, common: PbCommonResponse): Status {
  const r = applyHeaderMutations(common.header_mutation!, state.headers!, s.checker, {
    replacingMessage: enumName(common.status, ['CONTINUE', 'CONTINUE_AND_REPLACE']) === 'CONTINUE_AND_REPLACE',
    removeContentLength: state.shouldRemoveContentLength(),
    onRejected: () => s.stat('rejected_header_mutations'),
  });
  return r.ok ? OK : failure(r.message);
}

/** ProcessorState::handleHeadersResponse (processor_state.cc). */
export function handleHeadersResponse(s: ExtProcSession, state: ProcessorState, common: PbCommonResponse = {}): Status {
  if (state.callbackState !== 'HeadersCallback') return spurious('spurious message');
  if (common.header_mutation) {
    const st = processHeaderMutation(s, state, common);
    if (!st.ok) return st;
  }
  clearRouteCache(s, state, common);
  state.finishCall();
  if (enumName(common.status, ['CONTINUE', 'CONTINUE_AND_REPLACE']) === 'CONTINUE_AND_REPLACE') {
    if (common.body_mutation) {
      // "Remove the content length here because in this case external processor probably won't
      // properly set the content-length header to match the length of the new body".
      state.headers!.remove('content-length');
      state.bodyReplaced = true;
      state.bufferedData = applyBodyMutation(common.body_mutation, state.bufferedData ?? EMPTY);
    }
    // Nothing more of this message goes to the processor.
    state.chunkQueue = [];
    state.bodyMode = 'NONE';
    state.sendTrailers = false;
  } else if (state.noBody) {
    // no body in the first place
  } else if (state.completeBodyAvailable && state.bodyMode !== 'NONE') {
    if (state.bufferedData !== null) {
      // The whole body arrived while waiting: one message, handled with buffered semantics
      // whatever the body mode (facts §2.1).
      s.sendBodyChunk(state, state.bufferedData, 'BufferedBodyCallback', !state.trailersAvailable);
      return OK;
    }
  } else if (state.bodyMode === 'BUFFERED') {
    // Headers stay held so the body response can still mutate them.
    return OK;
  } else if (state.bodyMode === 'STREAMED') {
    sendBufferedDataInStreamedMode(s, state);
    return OK;
  } else if (state.bodyMode === 'BUFFERED_PARTIAL') {
    if (state.bufferedData && state.bufferedData.length > 0) {
      state.chunkQueue.push({ data: state.bufferedData, endStream: false });
      state.bufferedData = null;
    }
    if (state.queueBytes() > s.cb.bufferLimit) {
      const all = state.consolidate();
      s.sendBodyChunk(state, all.data, 'BufferedPartialBodyCallback', false);
    }
    return OK;
  }
  state.headers = null;
  state.continueIfNecessary();
  return OK;
}

/**
 * ProcessorState::sendBufferedDataInStreamedMode: chunks that arrived before the headers
 * response go out coalesced into one message, then headers continue.
 */
function sendBufferedDataInStreamedMode(s: ExtProcSession, state: ProcessorState): void {
  if (state.bufferedData && state.bufferedData.length > 0) {
    const chunk = state.bufferedData;
    state.bufferedData = null;
    s.sendBodyChunk(state, chunk, 'StreamedBodyCallback', false);
    state.chunkQueue.push({ data: chunk, endStream: false });
  }
  state.headers = null;
  state.continueIfNecessary();
}

export function isLastBodyResponse(state: ProcessorState): boolean {
  // isLastBodyResponse (ext_proc.cc): only STREAMED is checked; BUFFERED* return false.
  return state.bodyMode === 'STREAMED' && state.chunkQueue.length > 0 && state.chunkQueue[0]!.endStream;
}

/** ProcessorState::handleBodyResponse (processor_state.cc). */
export function handleBodyResponse(s: ExtProcSession, state: ProcessorState, common: PbCommonResponse = {}): Status {
  const cs = state.callbackState;
  if (cs !== 'BufferedBodyCallback' && cs !== 'StreamedBodyCallback' && cs !== 'BufferedPartialBodyCallback') {
    return spurious('spurious message');
  }
  // streamed_response is only valid with FULL_DUPLEX_STREAMED (facts §2.5).
  if (common.body_mutation?.mutation === 'streamed_response') return spurious('spurious message');
  let shouldContinue = false;
  if (cs === 'BufferedBodyCallback') {
    if (common.header_mutation && state.headers) {
      const st = processHeaderMutation(s, state, common);
      if (!st.ok) return st;
    }
    if (common.body_mutation) {
      const cl = state.headers?.get('content-length');
      if (cl !== undefined && /^\d+$/.test(cl) && Number(cl) !== bodyMutationLength(common.body_mutation)) {
        return failure('mismatch between content length and the length of the mutated body');
      }
      state.bufferedData = applyBodyMutation(common.body_mutation, state.bufferedData ?? EMPTY);
    }
    state.finishCall();
    shouldContinue = true;
  } else if (cs === 'StreamedBodyCallback') {
    // Header mutations are ignored here (only applied with BUFFERED/BUFFERED_PARTIAL).
    const chunk = state.chunkQueue.shift();
    if (!chunk) return spurious('spurious message');
    const data = common.body_mutation ? applyBodyMutation(common.body_mutation, chunk.data) : chunk.data;
    shouldContinue = chunk.endStream;
    if (data.length > 0) state.forwardData(data, chunk.endStream);
    if (state.chunkQueue.length === 0) state.finishCall();
    else state.finishCall('StreamedBodyCallback');
  } else {
    const chunk = state.chunkQueue.shift();
    if (!chunk) return spurious('spurious message');
    if (common.header_mutation && state.headers) {
      const st = processHeaderMutation(s, state, common);
      if (!st.ok) return st;
    }
    const data = common.body_mutation ? applyBodyMutation(common.body_mutation, chunk.data) : chunk.data;
    if (data.length > 0) state.forwardData(data, chunk.endStream);
    shouldContinue = true;
    state.finishCall();
    state.partialBodyProcessed = true;
    if (state.chunkQueue.length > 0) {
      // "If anything else is left on the queue, inject it too"
      const rest = state.consolidate();
      state.chunkQueue = [];
      state.forwardData(rest.data, rest.endStream);
    }
  }
  clearRouteCache(s, state, common);
  state.headers = null;
  if (shouldContinue) state.continueIfNecessary();
  return OK;
}
