/**
 * @module providers/sse
 * Incremental Server-Sent Events parser over bytes, per the WHATWG HTML "event stream
 * interpretation" rules, written once for every stage that reads a provider's stream.
 *
 * Bytes arrive in arbitrary chunks (Envoy hands over whatever the upstream TCP reads gave it):
 * a chunk may end inside a field name, between the CR and LF of a CRLF, or inside a multi-byte
 * UTF-8 character. The parser therefore works on bytes: line ends (CR, LF, CRLF) are ASCII and
 * never occur inside a UTF-8 sequence, so lines are found by scanning bytes and each complete
 * line is decoded once. A character split across chunks is always inside an incomplete line,
 * whose bytes are kept (as chunk slices, joined once at the line end) until the line completes,
 * so it decodes whole. Per-chunk work is one byte scan plus one decode per line; nothing is
 * concatenated per byte.
 */

/** One dispatched event. */
export interface SseEvent {
  /** The `event` field of the block; undefined when absent or empty (a browser would say "message"). */
  readonly event: string | undefined;
  /** The `data` lines of the block joined by "\n". */
  readonly data: string;
  /**
   * The last event ID as the spec keeps it: set by an `id` field and kept for later events
   * until another `id` field changes it; undefined while no `id` field has been seen.
   */
  readonly id: string | undefined;
  /** The `retry` value (milliseconds) given in this event's block, if any. */
  readonly retry: number | undefined;
}

/**
 * Each event's data parsed as JSON, once however many readers ask: the usage collector of the
 * `usage` and `rate-limit` stages, the cache's capture and the translators all read the same
 * event objects (`x.responseEvents`). Keyed weakly: gone with the event.
 */
const parsedData = new WeakMap<SseEvent, unknown>();

/**
 * The event's data as JSON, or undefined when it is not a JSON object or array (`[DONE]`,
 * pings). Shared: read it, never change it.
 */
export function eventJson(e: SseEvent): unknown {
  let json = parsedData.get(e);
  if (json !== undefined || parsedData.has(e)) return json;
  const data = e.data;
  // Only `{…}` or `[…]` can be an event's JSON; skip the throw (expensive) for the rest.
  const c = data.charCodeAt(0);
  if (c === 0x7b || c === 0x5b || (c <= 0x20 && /^\s*[{[]/.test(data))) {
    try {
      json = JSON.parse(data);
    } catch {
      json = undefined;
    }
  }
  parsedData.set(e, json);
  return json;
}

/** Shared result for "no event completed", so the common case allocates nothing. */
const NONE: SseEvent[] = Object.freeze([]) as unknown as SseEvent[];

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;

/** `bytes` as a Buffer over the same memory (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Compares `buf[start, start+len)` with an ASCII field name without decoding. */
function nameIs(buf: Buffer, start: number, len: number, name: string): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if (buf[start + i] !== name.charCodeAt(i)) return false;
  return true;
}

/**
 * Incremental SSE parser. Feed bytes with {@link push}; each call returns the events its
 * bytes completed (the shared empty array when none: do not mutate results).
 */
export class SseParser {
  /** Slices of the current incomplete line (copied: the caller may reuse its buffers). */
  private partial: Buffer[] = [];
  private partialLen = 0;
  /** The previous chunk ended with CR: an LF starting the next chunk belongs to that line end. */
  private skipLf = false;
  /** No line has been completed yet: a leading BOM is still to be stripped. */
  private atStart = true;
  /** The current block's first data line, and any further ones (most events have one: no array). */
  private firstData: string | undefined = undefined;
  private moreData: string[] | undefined = undefined;
  private eventType = '';
  private lastId: string | undefined = undefined;
  private retryMs: number | undefined = undefined;
  /** Bytes consumed since the last blank line (the current block's complete lines). */
  private blockBytes = 0;
  private out: SseEvent[] = NONE;

  /** Bytes received that belong to no finished block yet (complete lines of the current block plus an incomplete line). */
  get pendingBytes(): number {
    return this.blockBytes + this.partialLen;
  }

  /**
   * Between two events, with nothing pending. A chunk of whole events, each one `data` line and
   * nothing else (no `id`, `event` or `retry`), would leave the parser exactly as it is: a reader
   * that recognises such a chunk by its bytes may skip parsing it (`Exchange.responseEventsUnread`).
   */
  get atEventBoundary(): boolean {
    return !this.atStart && !this.skipLf && this.partialLen === 0 && this.blockBytes === 0 && this.firstData === undefined && this.eventType === '' && this.retryMs === undefined;
  }

  /** Feeds bytes; returns the events completed by them. */
  push(bytes: Uint8Array): SseEvent[] {
    const n = bytes.length;
    if (n === 0) return NONE;
    const buf = asBuffer(bytes);
    this.out = NONE;
    let i = 0;
    if (this.skipLf) {
      this.skipLf = false;
      if (buf[0] === LF) {
        i = 1;
        // The LF completes a CRLF already counted as a line end; it only adds to a block in progress.
        if (this.blockBytes > 0) this.blockBytes += 1;
      }
    }
    let lineStart = i;
    // Without CR in the chunk (nearly every provider ends lines with LF alone), the next line
    // end is found natively (memchr) instead of testing every byte here.
    const lfOnly = buf.indexOf(CR, i) === -1;
    for (; i < n; i++) {
      if (lfOnly) {
        i = buf.indexOf(LF, i);
        if (i === -1) {
          i = n;
          break;
        }
      }
      const b = buf[i];
      if (b !== LF && b !== CR) continue;
      // A complete line: [lineStart, i), possibly preceded by bytes of earlier chunks.
      let lineLen = i - lineStart;
      let endLen = 1;
      if (b === CR) {
        if (i + 1 < n) {
          if (buf[i + 1] === LF) endLen = 2;
        } else {
          this.skipLf = true;
        }
      }
      if (this.partialLen > 0) {
        this.partial.push(buf.subarray(lineStart, i));
        const whole = Buffer.concat(this.partial, this.partialLen + lineLen);
        lineLen += this.partialLen;
        this.partial = [];
        this.partialLen = 0;
        this.line(whole, 0, lineLen, endLen);
      } else {
        this.line(buf, lineStart, lineLen, endLen);
      }
      i += endLen - 1;
      lineStart = i + 1;
    }
    if (lineStart < n) {
      // Copy: the tail must survive the caller reusing or freeing its buffer.
      this.partial.push(Buffer.from(buf.subarray(lineStart, n)));
      this.partialLen += n - lineStart;
    }
    const out = this.out;
    this.out = NONE;
    return out;
  }

  /**
   * End of stream. Per the spec an unterminated trailing block is discarded, so this returns
   * no event; {@link pendingBytes} still says how many bytes were left (non-zero means the
   * stream was cut inside an event or a line). The parser keeps its counts but takes no more input.
   */
  end(): SseEvent[] {
    return NONE;
  }

  /** Interprets one complete line `buf[start, start+len)`; `endLen` is its terminator's size. */
  private line(buf: Buffer, start: number, len: number, endLen: number): void {
    if (this.atStart) {
      this.atStart = false;
      if (len >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf) {
        start += 3;
        len -= 3;
        this.blockBytes += 3;
      }
    }
    if (len === 0) {
      this.blockBytes = 0;
      this.dispatch();
      return;
    }
    this.blockBytes += len + endLen;
    if (buf[start] === COLON) return; // comment
    const end = start + len;
    let colon = start;
    while (colon < end && buf[colon] !== COLON) colon++;
    const nameLen = colon - start;
    let valueStart = colon + 1;
    if (valueStart < end && buf[valueStart] === SPACE) valueStart++;
    if (valueStart > end) valueStart = end;
    switch (nameLen) {
      case 4:
        if (nameIs(buf, start, 4, 'data')) {
          const line = buf.toString('utf8', valueStart, end);
          if (this.firstData === undefined) this.firstData = line;
          else (this.moreData ??= []).push(line);
        }
        return;
      case 5:
        if (nameIs(buf, start, 5, 'event')) this.eventType = buf.toString('utf8', valueStart, end);
        else if (nameIs(buf, start, 5, 'retry')) {
          if (valueStart === end) return;
          for (let k = valueStart; k < end; k++) {
            const c = buf[k]!;
            if (c < 0x30 || c > 0x39) return;
          }
          this.retryMs = Number(buf.toString('latin1', valueStart, end));
        }
        return;
      case 2:
        if (nameIs(buf, start, 2, 'id')) {
          // An id containing NULL is ignored (spec).
          for (let k = valueStart; k < end; k++) if (buf[k] === 0) return;
          this.lastId = buf.toString('utf8', valueStart, end);
        }
        return;
      default:
        return;
    }
  }

  private dispatch(): void {
    const first = this.firstData;
    const retry = this.retryMs;
    this.retryMs = undefined;
    if (first === undefined) {
      this.eventType = '';
      return;
    }
    const data = this.moreData === undefined ? first : `${first}\n${this.moreData.join('\n')}`;
    const event: SseEvent = { event: this.eventType === '' ? undefined : this.eventType, data, id: this.lastId, retry };
    this.firstData = undefined;
    this.moreData = undefined;
    this.eventType = '';
    if (this.out === NONE) this.out = [event];
    else this.out.push(event);
  }
}

const NEWLINE = /\r\n|\r|\n/;

/**
 * Serialises one event in canonical form: `event: x\n`, `id: y\n` when given, one `data: `
 * line per line of `data`, then the blank line. Throws on an event name or id with a line
 * break, which no parser could read back (a caller bug).
 */
export function formatSseEvent(e: { event?: string; data: string; id?: string }): string {
  let s = '';
  if (e.event !== undefined) {
    if (NEWLINE.test(e.event)) throw new RangeError('SSE event name contains a line break');
    s = `event: ${e.event}\n`;
  }
  if (e.id !== undefined) {
    if (NEWLINE.test(e.id)) throw new RangeError('SSE id contains a line break');
    s += `id: ${e.id}\n`;
  }
  const data = e.data;
  if (data.indexOf('\n') === -1 && data.indexOf('\r') === -1) return `${s}data: ${data}\n\n`;
  for (const line of data.split(NEWLINE)) s += `data: ${line}\n`;
  return `${s}\n`;
}
