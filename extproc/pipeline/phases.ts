/**
 * @module pipeline/phases
 * The four points in an HTTP exchange where Envoy consults the gateway. Trailers are never
 * requested (Envoy's default trailer mode is SKIP and no stage needs them).
 */

/** A phase of the HTTP exchange, in the order Envoy delivers them. */
export type Phase = 'requestHeaders' | 'requestBody' | 'responseHeaders' | 'responseBody';

/** One body message from Envoy: a whole buffered body, or one STREAMED chunk. */
export interface BodyChunk {
  /** Bytes of this chunk (may be empty, e.g. a final chunk that only carries end_of_stream). */
  readonly bytes: Buffer;
  /** True on the last chunk of the body. */
  readonly endOfStream: boolean;
  /**
   * True for chunks from the observability stream (send-and-go, the provider's bytes before the
   * main filter's rewrites): they are parsed apart from the main stream's chunks.
   */
  readonly observed?: boolean;
}
