/**
 * @module providers/usage
 * Token usage as a provider reported it, read from a JSON answer or from stream events, counted
 * once. Providers repeat and revise counters (Anthropic's `message_delta.usage.output_tokens`
 * is cumulative, some OpenAI-dialect providers put usage on several chunks), so every counter
 * is replaced by its latest value, never added.
 *
 * The text the model produced so far (content, tool arguments, thinking) is kept as pieces and
 * joined only when asked, for estimating tokens when the provider reported none.
 */
import { asBuffer, eventJson, type SseEvent } from './sse.js';
import type { Dialect } from './types.js';

/**
 * Usage in one shape for both dialects. `inputTokens` counts every prompt token, cached and
 * cache-written ones included (OpenAI's `prompt_tokens`; Anthropic's input + cache read +
 * cache creation), so uncached input = inputTokens − cachedInputTokens − cacheWriteTokens.
 */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  cacheWriteTokens: number;
  /** Output tokens spent on reasoning (OpenAI reasoning_tokens, Anthropic thinking_tokens); part of outputTokens. */
  reasoningTokens: number;
  /** The provider reported final usage (OpenAI usage object; Anthropic message_delta usage or a JSON answer's usage). */
  complete: boolean;
}

type Json = Record<string, unknown>;

/** Text deltas joined into one piece (see UsageExtractor.addText). */
const JOIN_LOOSE = 16;

/** Most bytes of unparsed text-only events one answer keeps before reading them (see takeTextOnly). */
const DEFER_LIMIT = 256 * 1024;

/**
 * In one pass over an OpenAI event: anything besides output text (an error, a usage object —
 * not `null`, as every chunk has with include_usage —, a Responses API event other than a text
 * delta) and every `"delta"` key. Inside JSON strings a quote is escaped, so these can only be
 * keys or bare values, never the model's text.
 */
const OPENAI_SCAN = /"(?:error"|usage"\s*:\s*\{|type"\s*:\s*"response\.(?!output_text\.delta")|delta")/g;
const OPENAI_PLAIN = ':{"content":"';
const ANTHROPIC_DELTA = '{"type":"content_block_delta"';
const ANTHROPIC_PLAIN = '"delta":{"type":"text_delta","text":"';

/**
 * Reads an event that can only add output text, without parsing it: a Chat Completions delta or
 * a Responses API text delta (OpenAI), a `content_block_delta` (Anthropic), with no usage
 * object, no error and not the end. Returns undefined when `e` is not such an event (it must be
 * parsed). For one in the commonest shape (one choice whose delta holds only `content`, or an
 * Anthropic `text_delta`), returns its text, read from its one string literal; for any other
 * text-only shape, null (its text is read by parsing, if ever needed).
 */
export function readTextOnly(e: SseEvent, dialect: Dialect): string | null | undefined {
  const data = e.data;
  if (dialect === 'anthropic') {
    // Anthropic's data always opens with its type, which is authoritative.
    if ((e.event !== undefined && e.event !== 'content_block_delta') || !data.startsWith(ANTHROPIC_DELTA)) return undefined;
    const at = data.indexOf(ANTHROPIC_PLAIN, ANTHROPIC_DELTA.length);
    return at === -1 ? null : literalThenBrace(data, at + ANTHROPIC_PLAIN.length - 1);
  }
  if (data.charCodeAt(0) !== 0x7b /* { */) return undefined;
  let delta = -1;
  let deltas = 0;
  OPENAI_SCAN.lastIndex = 0;
  while (OPENAI_SCAN.test(data)) {
    const end = OPENAI_SCAN.lastIndex;
    if (!data.startsWith('"delta"', end - 7)) return undefined; // an error, a usage object, a typed event
    deltas++;
    delta = end;
  }
  if (deltas !== 1 || !data.startsWith(OPENAI_PLAIN, delta)) return null;
  return literalThenBrace(data, delta + OPENAI_PLAIN.length - 1);
}

/** The text of the JSON string literal opening at `open` when the delta closes right after it, else null. */
function literalThenBrace(data: string, open: number): string | null {
  const close = deltaLiteralEnd(data, open);
  return close === -1 ? null : literalText(data, open, close);
}

/**
 * The parts around the text of a plain Chat Completions delta, as one stream repeats them: the
 * id, creation time, model and fingerprint are the same on every chunk of a completion, and so
 * is what follows the text. Once `readTextOnly` has read an event of this shape (its one regex
 * pass found nothing but the delta), a later event that is the same prefix, a string literal and
 * the same suffix adds only that text: two comparisons instead of the regex pass.
 */
export class PlainDeltaShape {
  private prefix: string | undefined;
  private suffix: string | undefined;
  /** A whole chunk of one such event, as bytes: `data: ` + prefix + the delta's opening, and `}` + suffix + the blank line. */
  private head: Buffer | undefined;
  private tail: Buffer | undefined;

  /** Remembers the shape of `data`, an event `readTextOnly` read as plain text. */
  learn(data: string): void {
    const at = data.indexOf(OPENAI_DELTA_CONTENT);
    if (at === -1) return;
    const close = deltaLiteralEnd(data, at + OPENAI_DELTA_CONTENT.length - 1);
    if (close === -1) return;
    this.prefix = data.slice(0, at);
    this.suffix = data.slice(close + 2);
    // Views keep their whole event alive as long as the shape (the answer): fine for a common
    // event of a few hundred bytes; a large one is copied out.
    if (data.length > VIEWS_KEEP_AT_MOST) {
      this.prefix = ownCopy(this.prefix);
      this.suffix = ownCopy(this.suffix);
    }
    this.head = Buffer.from(`data: ${this.prefix}${OPENAI_DELTA_CONTENT}`);
    this.tail = Buffer.from(`}${this.suffix}\n\n`);
  }

  /**
   * The text of `chunk` when it is exactly one event of the learned shape (`data: ` and the
   * event on one line, then a blank line, LF line ends) whose text has no escape, else undefined
   * (parse it). Compared as bytes: the chunk need not be decoded or split into events.
   */
  readChunk(bytes: Uint8Array): string | undefined {
    const head = this.head;
    const tail = this.tail;
    if (head === undefined || tail === undefined) return undefined;
    const chunk = asBuffer(bytes);
    const n = chunk.length;
    const end = n - tail.length; // the closing quote is at end - 1
    if (end - 1 < head.length || chunk.compare(head, 0, head.length, 0, head.length) !== 0 || chunk.compare(tail, 0, tail.length, end, n) !== 0) return undefined;
    const close = end - 1;
    if (chunk[close] !== 0x22 /* " */) return undefined;
    // The literal must be one JSON string with nothing to unescape: no quote or backslash inside,
    // no control character (JSON forbids them raw; such an event does not parse).
    for (let i = head.length; i < close; i++) {
      const b = chunk[i]!;
      if (b === 0x22 || b === 0x5c || b < 0x20) return undefined;
    }
    return chunk.toString('utf8', head.length, close);
  }

  /** The text of `data` when it has the learned shape, else undefined (ask `readTextOnly`). */
  read(data: string): string | undefined {
    const prefix = this.prefix;
    // Equality of slices: V8 compares flat strings with memcmp; startsWith walks them char by char.
    if (prefix === undefined || data.slice(0, prefix.length) !== prefix || !data.startsWith(OPENAI_DELTA_CONTENT, prefix.length)) return undefined;
    const open = prefix.length + OPENAI_DELTA_CONTENT.length - 1;
    const close = deltaLiteralEnd(data, open);
    if (close === -1) return undefined;
    const suffix = this.suffix!;
    if (data.length - close - 2 !== suffix.length || data.slice(close + 2) !== suffix) return undefined;
    return literalText(data, open, close) ?? undefined;
  }
}

const OPENAI_DELTA_CONTENT = `"delta"${OPENAI_PLAIN}`;

/** Largest event whose learned shape may stay views into it. */
const VIEWS_KEEP_AT_MOST = 4096;

/** `s` as a string of its own (at most once per answer). */
function ownCopy(s: string): string {
  return s.length < SLICE_IS_VIEW ? s : (JSON.parse(JSON.stringify(s)) as string);
}

/**
 * Index of the quote closing the JSON string literal that opens at `open`, when the delta object
 * closes right after it (it holds nothing but that text), else -1. A quote inside a JSON string
 * is escaped, so the literal ends at the first unescaped quote.
 */
function deltaLiteralEnd(data: string, open: number): number {
  let i = open + 1;
  for (;;) {
    const c = data.charCodeAt(i);
    if (c === 0x22 /* " */) return data.charCodeAt(i + 1) === 0x7d /* } */ ? i : -1;
    if (Number.isNaN(c)) return -1;
    i += c === 0x5c /* \ */ ? 2 : 1;
  }
}

/**
 * V8 makes a slice of at least this many characters a view that keeps the whole string alive
 * (SlicedString::kMinLength); a shorter slice is a copy.
 */
const SLICE_IS_VIEW = 13;

/**
 * The text of the literal `data[open..close]` (quotes included), as a string of its own: the
 * extractor keeps every delta's text until the answer ends, and a view would keep the whole
 * event with it. Short literals without escapes are sliced (a copy); others are parsed.
 */
function literalText(data: string, open: number, close: number): string | null {
  if (close - open - 1 < SLICE_IS_VIEW) {
    const escape = data.indexOf('\\', open);
    if (escape === -1 || escape > close) return data.slice(open + 1, close);
  }
  try {
    return JSON.parse(data.slice(open, close + 1)) as string;
  } catch {
    return null;
  }
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function n(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Reads usage from one response of either dialect; one per response. */
export class UsageExtractor {
  private input = 0;
  private output = 0;
  private cacheRead = 0;
  private cacheWrite = 0;
  private reasoning = 0;
  /** Anthropic's uncached input_tokens, kept apart so a later revision replaces only it. */
  private anthropicInput = 0;
  private seenUsage = false;
  private ended = false;
  /** Output text in order; an SseEvent is a text-only event not parsed yet (see `takeTextOnly`). */
  private pieces: (string | SseEvent)[] = [];
  /** Strings at the end of `pieces` added one by one since the last join (see addText). */
  private loose = 0;
  private joined: string | undefined = '';
  private chars = 0;
  private deferredBytes = 0;

  constructor(readonly dialect: Dialect) {}

  /** The usage read so far. */
  get usage(): Usage {
    return {
      inputTokens: this.input,
      outputTokens: this.output,
      cachedInputTokens: this.cacheRead,
      cacheWriteTokens: this.cacheWrite,
      reasoningTokens: this.reasoning,
      complete: this.seenUsage,
    };
  }

  /** The answer reached its terminal event (`[DONE]` / `message_stop`), or a JSON answer was read. */
  get sawEnd(): boolean {
    return this.ended;
  }

  /** Characters of model output seen so far (content, tool arguments, thinking). */
  get textLength(): number {
    if (this.deferredBytes > 0) this.resolveDeferred();
    return this.chars;
  }

  /** The model output seen so far, joined once per change. */
  get text(): string {
    if (this.deferredBytes > 0) this.resolveDeferred();
    if (this.joined === undefined) {
      this.joined = this.pieces.join('');
      this.pieces = [this.joined];
      this.loose = 0;
    }
    return this.joined;
  }

  /** Takes the text of an event that carries only output text, read without the event (see `PlainDeltaShape.readChunk`). */
  takeText(text: string): void {
    this.addText(text);
  }

  /**
   * Takes an event that carries only output text, as `readTextOnly` read it: `text` when it
   * came in the common shape (the event need not be kept), null otherwise. Such an event is kept
   * unparsed, in its place among the pieces, and read only if someone asks for the text: most
   * answers report usage, so their deltas are never parsed (JSON.parse of every chunk was the
   * dearest part of following a stream). Bounded: past DEFER_LIMIT bytes of pending events they
   * are read at once.
   */
  takeTextOnly(e: SseEvent, text: string | null): void {
    if (text !== null) {
      this.addText(text);
      return;
    }
    this.pieces.push(e);
    this.loose = 0;
    this.joined = undefined;
    this.deferredBytes += e.data.length;
    if (this.deferredBytes > DEFER_LIMIT) this.resolveDeferred();
  }

  private resolveDeferred(): void {
    this.deferredBytes = 0;
    const pieces = this.pieces;
    this.pieces = [];
    this.loose = 0;
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (typeof p === 'string') this.pieces.push(p);
      else {
        const ev = eventJson(p);
        if (isObj(ev)) this.addText(this.eventText(ev));
      }
    }
  }

  /** Reads a whole (non-streamed) JSON answer. */
  fromJson(body: unknown): void {
    this.ended = true;
    if (!isObj(body)) return;
    if (this.dialect === 'openai') {
      if (isObj(body.usage)) this.openaiUsage(body.usage);
      // Responses API: output[].content[] parts of type output_text.
      for (const o of Array.isArray(body.output) ? body.output : []) {
        for (const part of isObj(o) && Array.isArray(o.content) ? o.content : []) if (isObj(part) && typeof part.text === 'string') this.addText(part.text);
      }
      const choices = Array.isArray(body.choices) ? body.choices : [];
      for (const c of choices) {
        const m = isObj(c) && isObj(c.message) ? c.message : undefined;
        if (!m) continue;
        if (typeof m.content === 'string') this.addText(m.content);
        if (Array.isArray(m.tool_calls)) for (const tc of m.tool_calls) if (isObj(tc) && isObj(tc.function) && typeof tc.function.arguments === 'string') this.addText(tc.function.arguments);
      }
    } else {
      if (isObj(body.usage)) this.anthropicUsage(body.usage, true);
      for (const b of Array.isArray(body.content) ? body.content : []) {
        if (!isObj(b)) continue;
        if (typeof b.text === 'string') this.addText(b.text);
        else if (typeof b.thinking === 'string') this.addText(b.thinking);
        else if (b.type === 'tool_use') this.addText(JSON.stringify(b.input ?? {}));
      }
    }
  }

  /** Reads one stream event; `json` is its parsed data when the caller already has it. */
  push(e: SseEvent, json?: unknown): void {
    if (this.dialect === 'openai' && e.data === '[DONE]') {
      this.ended = true;
      return;
    }
    const ev = json ?? eventJson(e);
    if (!isObj(ev)) return;
    if (this.dialect === 'openai') {
      if (isObj(ev.usage)) this.openaiUsage(ev.usage);
      // OpenAI's Responses API streams typed events; its usage comes once, in response.completed.
      if (typeof ev.type === 'string' && ev.type.startsWith('response.')) {
        if ((ev.type === 'response.completed' || ev.type === 'response.incomplete') && isObj(ev.response)) {
          if (isObj(ev.response.usage)) this.openaiUsage(ev.response.usage);
          this.ended = true;
        }
      }
      this.addText(this.eventText(ev));
      return;
    }
    switch (ev.type) {
      case 'content_block_delta':
        this.addText(this.eventText(ev));
        return;
      case 'message_start': {
        const m = ev.message;
        if (isObj(m) && isObj(m.usage)) this.anthropicUsage(m.usage, false);
        return;
      }
      case 'message_delta':
        if (isObj(ev.usage)) this.anthropicUsage(ev.usage, true);
        return;
      case 'message_stop':
        this.ended = true;
        return;
    }
  }

  /** The output text one stream event carries ('' for none). */
  private eventText(ev: Json): string {
    if (this.dialect === 'openai') {
      if (typeof ev.type === 'string' && ev.type.startsWith('response.')) {
        return ev.type === 'response.output_text.delta' && typeof ev.delta === 'string' ? ev.delta : '';
      }
      const choices = ev.choices;
      if (!Array.isArray(choices)) return '';
      let text = '';
      for (const c of choices) {
        const d = isObj(c) && isObj(c.delta) ? c.delta : undefined;
        if (!d) continue;
        if (typeof d.content === 'string') text += d.content;
        else if (typeof d.reasoning_content === 'string') text += d.reasoning_content;
        if (Array.isArray(d.tool_calls)) {
          for (const tc of d.tool_calls) if (isObj(tc) && isObj(tc.function) && typeof tc.function.arguments === 'string') text += tc.function.arguments;
        }
      }
      return text;
    }
    if (ev.type !== 'content_block_delta') return '';
    const d = ev.delta;
    if (!isObj(d)) return '';
    return typeof d.text === 'string' ? d.text : typeof d.partial_json === 'string' ? d.partial_json : typeof d.thinking === 'string' ? d.thinking : '';
  }

  private addText(t: string): void {
    if (t === '') return;
    const pieces = this.pieces;
    pieces.push(t);
    this.chars += t.length;
    this.joined = undefined;
    // Deltas are a few characters each and live as long as the answer: every JOIN_LOOSE of them
    // become one string, so a stream keeps a few objects for the young GC to copy, not one per
    // delta. Joined pieces are left alone (each character is copied once more, not again and again).
    if (++this.loose === JOIN_LOOSE) {
      const start = pieces.length - JOIN_LOOSE;
      pieces[start] = pieces.slice(start).join('');
      pieces.length = start + 1;
      this.loose = 0;
    }
  }

  /**
   * Chat Completions (`prompt_tokens`, `completion_tokens`, `*_tokens_details`), embeddings
   * (`prompt_tokens` only) and the Responses API (`input_tokens`, `output_tokens`,
   * `input_tokens_details` / `output_tokens_details`) name the same counters differently.
   */
  private openaiUsage(u: Json): void {
    this.seenUsage = true;
    this.input = n(u.prompt_tokens) ?? n(u.input_tokens) ?? this.input;
    this.output = n(u.completion_tokens) ?? n(u.output_tokens) ?? this.output;
    const pd = isObj(u.prompt_tokens_details) ? u.prompt_tokens_details : u.input_tokens_details;
    if (isObj(pd)) this.cacheRead = n(pd.cached_tokens) ?? this.cacheRead;
    const cd = isObj(u.completion_tokens_details) ? u.completion_tokens_details : u.output_tokens_details;
    if (isObj(cd)) this.reasoning = n(cd.reasoning_tokens) ?? this.reasoning;
  }

  /** `final`: the counters are the answer's totals (message_delta, JSON), not message_start's opening figures. */
  private anthropicUsage(u: Json, final: boolean): void {
    if (final) this.seenUsage = true;
    this.anthropicInput = n(u.input_tokens) ?? this.anthropicInput;
    this.cacheRead = n(u.cache_read_input_tokens) ?? this.cacheRead;
    this.cacheWrite = n(u.cache_creation_input_tokens) ?? this.cacheWrite;
    this.output = n(u.output_tokens) ?? this.output;
    const od = u.output_tokens_details;
    if (isObj(od)) this.reasoning = n(od.thinking_tokens) ?? this.reasoning;
    this.input = this.anthropicInput + this.cacheRead + this.cacheWrite;
  }
}
