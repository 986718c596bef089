/**
 * @module server/observerHandler
 * An observability-mode stream (send-and-go: Envoy expects no answer): links to the main
 * stream's exchange by request id and feeds response chunks to the observer stages.
 * Everything else already ran on the main stream.
 *
 * Where it sits: Envoy runs encoder filters in reverse order of the filter chain, and the
 * observability filter is configured after the main ext_proc filter, so on the response path it
 * sees the bytes before the main filter rewrites them (e.g. before PII placeholders are
 * restored) and after the per-attempt upstream filter translated them to the client's dialect.
 */
import { headersOf } from './decode.js';
import type { Answer, ProcessStream, StreamHandler } from './processStream.js';
import type { PbProcessingRequest, RequestKind } from './protocol.js';

const EMPTY = Buffer.alloc(0);

/** Handles the messages of one observability-mode stream. */
export class ObserverHandler implements StreamHandler {
  constructor(private readonly s: ProcessStream) {}

  handle(kind: RequestKind, msg: PbProcessingRequest): Answer | Promise<Answer> {
    const s = this.s;
    if (kind === 'request_headers') {
      const headers = headersOf(msg.request_headers);
      const requestId = headers.get('x-request-id');
      const link = requestId ? s.deps.links.acquire(requestId) : undefined;
      if (link) {
        s.x = link.x;
        s.release = link.release;
      } else {
        s.x.requestHeaders = headers;
        if (s.pipeline.hasObservers) s.x.log.warn('observability stream without a main stream to join; its chunks feed a detached exchange', { filter: 'observer' });
      }
    } else if (kind === 'response_headers') {
      // The main stream may have skipped response headers: the observer's copy is the one we have.
      if (s.x.responseHeaders === undefined) s.x.responseHeaders = headersOf(msg.response_headers);
      if (msg.response_headers?.end_of_stream) s.x.responseComplete = true;
    } else if (kind === 'response_body') {
      const body = msg.response_body;
      const endOfStream = body?.end_of_stream === true;
      if (endOfStream) s.x.responseComplete = true;
      if (s.pipeline.hasObservers) {
        const pending = s.pipeline.observe(s.x, { bytes: body?.body ?? EMPTY, endOfStream, observed: true });
        if (pending) return pending.then(() => null);
      }
    }
    return null;
  }
}
