/**
 * @module stages/cacheCapture
 * Reads the answer of a cache miss as it passes (SSE events of either dialect, or the JSON
 * body), into the neutral form the cache stores. It only reads: chunks are never held or
 * changed. `result()` says whether the answer is storable and why not: an error event, an
 * answer that never reached its end, more than one choice, non-text content (tool calls,
 * thinking), or a body too large to keep.
 */
import { eventJson, type SseEvent } from '../providers/sse.js';
import { PlainDeltaShape, UsageExtractor } from '../providers/usage.js';
import type { CachedAnswer } from '../cache/replay.js';
import type { Dialect } from '../cache/scope.js';

/** Why a captured answer is not stored (for logs and counters; never answer text). */
export type CaptureRefusal = 'incomplete' | 'error-event' | 'multiple-choices' | 'non-text' | 'tool-calls' | 'too-large' | 'unparseable' | 'empty';

export type CaptureResult = { ok: true; answer: CachedAnswer; toolCalls: false } | { ok: false; reason: CaptureRefusal };

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The answer of one response, read chunk by chunk. */
export class AnswerCapture {
  private readonly usage: UsageExtractor;
  private readonly pieces: string[] = [];
  private chars = 0;
  private finish: string | undefined;
  private model = '';
  private ended = false;
  private refused: CaptureRefusal | undefined;
  private body: Buffer[] | undefined;
  private bodyBytes = 0;
  /**
   * OpenAI: the shape of a plain text delta this capture read in full (see `plainDelta`). A
   * later event with the same bytes around its text differs from it only by that text, so it
   * adds the text and nothing else: no JSON.parse for most events of a streamed answer.
   */
  private readonly shape: PlainDeltaShape | undefined;

  constructor(
    readonly dialect: Dialect,
    /** Longest answer kept (characters of text, or bytes of a JSON body). */
    private readonly maxBytes = 1024 * 1024,
  ) {
    this.usage = new UsageExtractor(dialect);
    if (dialect === 'openai') this.shape = new PlainDeltaShape();
  }

  /** Feeds the SSE events of one chunk. */
  events(events: readonly SseEvent[]): void {
    for (const e of events) {
      if (this.refused) return;
      if (this.shape) {
        if (e.data === '[DONE]') {
          this.ended = true;
          continue;
        }
        const text = this.shape.read(e.data);
        if (text !== undefined) {
          this.usage.takeTextOnly(e, text);
          this.addText(text);
          continue;
        }
      }
      const json = eventJson(e);
      if (json === undefined) continue; // comments, pings in other shapes: not part of the answer
      this.usage.push(e, json);
      if (!isObj(json)) continue;
      if (this.shape) {
        const plain = plainDelta(json, this.model);
        this.openaiChunk(json);
        if (plain && !this.refused) this.shape.learn(e.data);
      } else this.anthropicEvent(e.event ?? (typeof json.type === 'string' ? json.type : ''), json);
    }
  }

  /** Feeds a chunk of a JSON (non-SSE) body; parsed at `end`. */
  jsonChunk(bytes: Uint8Array, end: boolean): void {
    if (this.refused) return;
    this.bodyBytes += bytes.length;
    if (this.bodyBytes > this.maxBytes) {
      this.refused = 'too-large';
      this.body = undefined;
      return;
    }
    (this.body ??= []).push(Buffer.from(bytes));
    if (!end) return;
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(this.body).toString('utf8'));
    } catch {
      this.refused = 'unparseable';
      return;
    } finally {
      this.body = undefined;
    }
    this.usage.fromJson(json);
    if (!isObj(json)) {
      this.refused = 'unparseable';
      return;
    }
    if (typeof json.model === 'string') this.model = json.model;
    if (this.dialect === 'openai') {
      const choices = Array.isArray(json.choices) ? json.choices : [];
      if (choices.length !== 1) return void (this.refused = choices.length === 0 ? 'unparseable' : 'multiple-choices');
      const c = choices[0];
      const m = isObj(c) && isObj(c.message) ? c.message : undefined;
      if (!m || !isObj(c)) return void (this.refused = 'unparseable');
      if (Array.isArray(m.tool_calls) && m.tool_calls.length > 0) return void (this.refused = 'tool-calls');
      if (m.content !== null && m.content !== undefined && typeof m.content !== 'string') return void (this.refused = 'non-text');
      if (typeof m.content === 'string') this.addText(m.content);
      if (typeof c.finish_reason === 'string') this.finish = c.finish_reason;
    } else {
      const blocks = Array.isArray(json.content) ? json.content : [];
      for (const b of blocks) {
        if (!isObj(b)) continue;
        if (b.type === 'tool_use') return void (this.refused = 'tool-calls');
        if (b.type !== 'text' || typeof b.text !== 'string') return void (this.refused = 'non-text');
        this.addText(b.text);
      }
      if (typeof json.stop_reason === 'string') this.finish = json.stop_reason;
    }
    this.ended = true;
  }

  /** Why the answer can no longer be stored, as soon as that is known. */
  get refusal(): CaptureRefusal | undefined {
    return this.refused;
  }

  /** The finish reason seen so far (the provider's words). */
  get finishReason(): string | undefined {
    return this.finish;
  }

  result(): CaptureResult {
    if (this.refused) return { ok: false, reason: this.refused };
    if (!this.ended || this.finish === undefined) return { ok: false, reason: 'incomplete' };
    const text = this.pieces.join('');
    if (text.length === 0) return { ok: false, reason: 'empty' };
    const u = this.usage.usage;
    return {
      ok: true,
      toolCalls: false,
      answer: { v: 1, dialect: this.dialect, text, finishReason: this.finish, usage: { inputTokens: u.inputTokens, outputTokens: u.outputTokens }, model: this.model },
    };
  }

  private addText(t: string): void {
    if (t === '') return;
    this.chars += t.length;
    if (this.chars > this.maxBytes) {
      this.refused = 'too-large';
      this.pieces.length = 0;
      return;
    }
    this.pieces.push(t);
  }

  private openaiChunk(json: Json): void {
    if (isObj(json.error)) return void (this.refused = 'error-event');
    if (typeof json.model === 'string' && this.model === '') this.model = json.model;
    const choices = json.choices;
    if (!Array.isArray(choices)) return;
    for (const c of choices) {
      if (!isObj(c)) continue;
      if (typeof c.index === 'number' && c.index !== 0) return void (this.refused = 'multiple-choices');
      const d = c.delta;
      if (isObj(d)) {
        if (Array.isArray(d.tool_calls) && d.tool_calls.length > 0) return void (this.refused = 'tool-calls');
        if (isObj(d.function_call)) return void (this.refused = 'tool-calls');
        if (typeof d.content === 'string') this.addText(d.content);
      }
      if (typeof c.finish_reason === 'string') this.finish = c.finish_reason;
    }
  }

  private anthropicEvent(type: string, json: Json): void {
    switch (type) {
      case 'error':
        this.refused = 'error-event';
        return;
      case 'message_start': {
        const m = json.message;
        if (isObj(m) && typeof m.model === 'string') this.model = m.model;
        return;
      }
      case 'content_block_start': {
        const b = json.content_block;
        if (!isObj(b)) return;
        if (b.type === 'tool_use') this.refused = 'tool-calls';
        else if (b.type !== 'text') this.refused = 'non-text';
        else if (typeof b.text === 'string') this.addText(b.text);
        return;
      }
      case 'content_block_delta': {
        const d = json.delta;
        if (!isObj(d)) return;
        if (d.type === 'text_delta' && typeof d.text === 'string') this.addText(d.text);
        else this.refused = 'non-text';
        return;
      }
      case 'message_delta': {
        const d = json.delta;
        if (isObj(d) && typeof d.stop_reason === 'string') this.finish = d.stop_reason;
        return;
      }
      case 'message_stop':
        this.ended = true;
        return;
    }
  }
}

/**
 * True when reading the OpenAI chunk `json` can only add its text: the model already known, no
 * error or usage, one choice (index 0) whose delta holds nothing but `content`, no finish
 * reason. Any event identical to it outside that text is then the same (AnswerCapture.shape).
 */
function plainDelta(json: Json, model: string): boolean {
  if (model === '' || json.model !== model || json.error !== undefined || (json.usage !== undefined && json.usage !== null)) return false;
  const choices = json.choices;
  if (!Array.isArray(choices) || choices.length !== 1) return false;
  const c = choices[0];
  if (!isObj(c) || (c.index !== undefined && c.index !== 0) || (c.finish_reason !== undefined && c.finish_reason !== null)) return false;
  const d = c.delta;
  if (!isObj(d) || typeof d.content !== 'string') return false;
  for (const k in d) if (k !== 'content') return false;
  return true;
}
