/**
 * Seeded randomness for the stand-in: chunk boundaries of bodies and retry back-off jitter.
 *
 * Why chunking matters: in STREAMED mode each `request_body`/`response_body` message is whatever
 * Envoy's codec delivered in one data callback — TCP reads, HTTP/1 chunks, HTTP/2 DATA frames —
 * unrelated to SSE event or UTF-8 character boundaries, and a stream often ends with an empty
 * chunk carrying end_stream (facts §2.5; ext_proc.cc onData → one message per decodeData call).
 * The stand-in re-cuts every body it receives at offsets drawn from a seeded PRNG, so tests see
 * split SSE events, split multi-byte characters and empty final chunks, reproducibly.
 */

/** mulberry32: a small, fast, seedable 32-bit PRNG. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** A child generator, so independent streams do not disturb each other's sequences. */
  fork(salt: number): Prng {
    return new Prng((this.nextU32() ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  }
}

export interface ChunkerOptions {
  /** Largest piece produced (default 512). */
  maxChunk?: number;
  /** Probability that a body whose end is known ends with an extra empty end_stream chunk. */
  emptyEndProbability?: number;
}

/**
 * Cuts a byte stream at PRNG-chosen offsets. Cut points are counted in stream offsets (not per
 * input buffer), so a given seed yields the same cuts however the bytes arrived; the input's own
 * boundaries (a TCP read, an HTTP chunk) remain boundaries too, as they would in Envoy's codec.
 */
export class Chunker {
  private untilCut: number;
  private readonly maxChunk: number;
  private readonly emptyEndProbability: number;

  constructor(
    private readonly rng: Prng,
    opts: ChunkerOptions = {},
  ) {
    this.maxChunk = opts.maxChunk ?? 512;
    this.emptyEndProbability = opts.emptyEndProbability ?? 0.35;
    this.untilCut = this.drawSize();
  }

  /** Mostly small pieces (1–7 bytes split UTF-8 sequences and SSE "data:" prefixes), some larger. */
  private drawSize(): number {
    const r = this.rng.next();
    if (r < 0.35) return this.rng.int(1, 7);
    if (r < 0.75) return this.rng.int(8, 64);
    return this.rng.int(65, Math.max(65, this.maxChunk));
  }

  /** Splits one incoming buffer into non-empty pieces. */
  split(buf: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let off = 0;
    while (off < buf.length) {
      const take = Math.min(this.untilCut, buf.length - off);
      out.push(buf.subarray(off, off + take));
      off += take;
      this.untilCut -= take;
      if (this.untilCut === 0) this.untilCut = this.drawSize();
    }
    return out;
  }

  /** For a body whose last byte is known: does end_stream come as a separate empty chunk? */
  emptyEnd(): boolean {
    return this.rng.next() < this.emptyEndProbability;
  }
}

/**
 * Feeds a body into `emit(piece, endStream)` through a Chunker. With a known length (content-length)
 * the last piece carries end_stream, unless the PRNG picks an extra empty end chunk; without one
 * (chunked transfer) the end comes as an empty chunk at `end()`, as the HTTP/1 codec delivers the
 * terminating zero-length chunk in its own callback.
 */
export class BodyChunkFeeder {
  private received = 0;
  private ended = false;

  constructor(
    private readonly chunker: Chunker,
    private readonly expectedLength: number | undefined,
    private readonly emit: (piece: Buffer, endStream: boolean) => void,
  ) {}

  push(buf: Buffer): void {
    if (this.ended || buf.length === 0) return;
    const pieces = this.chunker.split(buf);
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      this.received += piece.length;
      const last = this.expectedLength !== undefined && this.received >= this.expectedLength;
      if (last && i === pieces.length - 1) {
        this.ended = true;
        if (this.chunker.emptyEnd()) {
          this.emit(piece, false);
          this.emit(Buffer.alloc(0), true);
        } else {
          this.emit(piece, true);
        }
        return;
      }
      this.emit(piece, false);
    }
  }

  /** The source ended; emits the end_stream if it has not been emitted yet. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit(Buffer.alloc(0), true);
  }
}
