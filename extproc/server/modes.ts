/**
 * @module server/modes
 * Which messages Envoy should send, from what the stages need. Every message is a synchronous
 * round trip (~0.25 ms of latency, ~25 µs of CPU here), so the gateway turns off what no stage
 * reads with `mode_override`. Envoy's rules (envoy-ext-proc-facts.md §2.3): the override is
 * honoured only on header responses (and only with `allow_mode_override`); body modes in it are
 * taken literally, header modes DEFAULT mean "keep configured"; no override with
 * FULL_DUPLEX_STREAMED or `send_body_without_waiting_for_header_response`.
 */
import type { EnvoyProtocol, StreamExchange } from '../pipeline/exchange.js';
import type { PipelineNeeds } from '../pipeline/pipeline.js';
import type { FilterRole } from '../pipeline/stage.js';
import type { PbProcessingMode } from './protocol.js';

/** Body modes in force for this stream, as far as the gateway knows. */
export interface EffectiveModes {
  requestBodyMode: string;
  responseBodyMode: string;
}

function overridable(protocol: EnvoyProtocol): boolean {
  return (
    !protocol.sendBodyWithoutWaitingForHeaderResponse &&
    protocol.requestBodyMode !== 'FULL_DUPLEX_STREAMED' &&
    protocol.responseBodyMode !== 'FULL_DUPLEX_STREAMED'
  );
}

/**
 * The override for the request-headers answer: a buffered request body only if a stage reads
 * it, response headers only if a stage reads them (or must see the content type to choose the
 * response body mode), no response body if no stage could read it. Undefined when nothing
 * would change. Updates `modes` to what Envoy will use if it honours the override.
 *
 * The attempt filter is configured with response headers SKIP (envoy/envoy.yaml: most attempts
 * need no response phase), and ProtocolConfiguration does not carry header modes, so when
 * attempt stages read the response (a per-provider translation of the answer) the override
 * turns response headers on explicitly with SEND.
 */
export function requestHeadersOverride(needs: PipelineNeeds, protocol: EnvoyProtocol, modes: EffectiveModes, role: FilterRole = 'router'): PbProcessingMode | undefined {
  if (!overridable(protocol)) return undefined;
  const requestBody = needs.requestBody ? 'BUFFERED' : 'NONE';
  const responseBody = needs.responseBody === 'never' ? 'NONE' : modes.responseBodyMode;
  const skipResponseHeaders = !needs.responseHeaders;
  const sendResponseHeaders = needs.responseHeaders && role === 'attempt';
  if (requestBody === modes.requestBodyMode && responseBody === modes.responseBodyMode && !skipResponseHeaders && !sendResponseHeaders) return undefined;
  modes.requestBodyMode = requestBody;
  modes.responseBodyMode = responseBody;
  return {
    request_body_mode: requestBody,
    response_body_mode: responseBody,
    ...(skipResponseHeaders ? { response_header_mode: 'SKIP' as const } : {}),
    ...(sendResponseHeaders ? { response_header_mode: 'SEND' as const } : {}),
  };
}

/** True when some stage reads this exchange's response body. */
export function wantsResponseBody(needs: PipelineNeeds, x: StreamExchange): boolean {
  return needs.responseBody === 'always' || (needs.responseBody === 'on-demand' && x.responseBodyRequested);
}

/**
 * The override for the response-headers answer: no body when no stage reads it; STREAMED for
 * an SSE answer (never buffer a stream: each event must reach the client as it comes);
 * BUFFERED otherwise. The request body mode is repeated as is, since Envoy takes it literally.
 */
export function responseHeadersOverride(needs: PipelineNeeds, x: StreamExchange, modes: EffectiveModes, role: FilterRole = 'router'): PbProcessingMode | undefined {
  if (!overridable(x.protocol)) return undefined;
  const wanted = !wantsResponseBody(needs, x) ? 'NONE' : x.responseIsEventStream ? 'STREAMED' : 'BUFFERED';
  if (wanted === modes.responseBodyMode) return undefined;
  modes.responseBodyMode = wanted;
  // An override's header modes DEFAULT mean "keep configured", which on the attempt filter is
  // SKIP (envoy.yaml): Envoy would then treat the response as headers-skipped and drop the
  // content-length a BUFFERED body answer sets (shouldRemoveContentLength, facts §2.6). Repeat
  // the SEND the request-headers override asked for.
  return { request_body_mode: modes.requestBodyMode, response_body_mode: wanted, ...(role === 'attempt' ? { response_header_mode: 'SEND' as const } : {}) };
}
