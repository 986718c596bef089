/**
 * @module stages/piiRestore
 * Puts the originals behind a request's PII placeholders back into the model's answer, in the
 * client's dialect, before the client sees it: whole JSON answers (`restoreJsonAnswer`) and SSE
 * streams event by event (`SseRestore`).
 *
 * Streams: one `StreamRestorer` per independent text stream — OpenAI: per choice for
 * `delta.content` and `delta.refusal`, per (choice, tool call) for `function.arguments`;
 * Anthropic: per content block for `text_delta.text` and `input_json_delta.partial_json`.
 * Arguments and partial JSON are JSON text, so their restorers run in `json` mode (a restored
 * `"` becomes `\"`). What a restorer holds back (a possible placeholder prefix, never more) is
 * emitted in a later event; an event whose delta became empty is kept with an empty delta.
 * Held text is flushed where its stream ends: into the OpenAI chunk carrying `finish_reason`,
 * in a content_block_delta synthesized before Anthropic's `content_block_stop`, and before
 * `[DONE]` / `message_stop` / the end of the body for anything still held.
 *
 * Events that cannot hold a placeholder (no `<`, nothing held) are passed through untouched
 * without being parsed; an event that is not JSON passes through as is.
 */
import type { Dialect, PiiSession, RestoreMode, StreamRestorer } from '../pii/index.js';
import type { SseEvent } from '../providers/sse.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Sees each answer text before it is restored (for `scanResponses` counting). */
export type TextObserver = (text: string) => void;

/**
 * True when a JSON text may carry a placeholder: a `<`, or its `\u003c` escape (some
 * encoders escape HTML characters in JSON strings).
 */
export function mayHoldPlaceholder(json: string): boolean {
  return json.includes('<') || json.includes('\\u003');
}

/**
 * Restores the text fields of a parsed JSON answer in place; true when something changed.
 * OpenAI: `choices[].message.content` (string or text parts), `refusal`, `tool_calls[].function.arguments`
 * and `function_call.arguments` (json mode), legacy `choices[].text`. Anthropic: `content[]`
 * text blocks and the string values of `tool_use` inputs. Thinking blocks are signed: untouched.
 */
export function restoreJsonAnswer(session: PiiSession, dialect: Dialect, answer: unknown, observe?: TextObserver): boolean {
  if (!isObj(answer)) return false;
  let changed = false;
  const fix = (holder: Obj, key: string, mode: RestoreMode): void => {
    const v = holder[key];
    if (typeof v !== 'string' || v.length === 0) return;
    observe?.(v);
    const r = session.restore(v, mode);
    if (r !== v) {
      holder[key] = r;
      changed = true;
    }
  };
  const deep = (holder: Obj | unknown[], key: string | number): void => {
    const v = (holder as Record<string | number, unknown>)[key];
    if (typeof v === 'string') {
      if (v.length === 0) return;
      observe?.(v);
      const r = session.restore(v, 'text');
      if (r !== v) {
        (holder as Record<string | number, unknown>)[key] = r;
        changed = true;
      }
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) deep(v, i);
    } else if (isObj(v)) {
      for (const k of Object.keys(v)) deep(v, k);
    }
  };
  if (dialect === 'openai') {
    const choices = answer['choices'];
    if (!Array.isArray(choices)) return false;
    for (const choice of choices) {
      if (!isObj(choice)) continue;
      fix(choice, 'text', 'text');
      const msg = choice['message'];
      if (!isObj(msg)) continue;
      const content = msg['content'];
      if (typeof content === 'string') fix(msg, 'content', 'text');
      else if (Array.isArray(content)) for (const part of content) if (isObj(part)) fix(part, 'text', 'text');
      fix(msg, 'refusal', 'text');
      const calls = msg['tool_calls'];
      if (Array.isArray(calls)) {
        for (const call of calls) if (isObj(call) && isObj(call['function'])) fix(call['function'], 'arguments', 'json');
      }
      if (isObj(msg['function_call'])) fix(msg['function_call'], 'arguments', 'json');
    }
  } else {
    const content = answer['content'];
    if (!Array.isArray(content)) return false;
    for (const block of content) {
      if (!isObj(block)) continue;
      if (block['type'] === 'text') fix(block, 'text', 'text');
      else if (block['type'] === 'tool_use' || block['type'] === 'server_tool_use') deep(block, 'input');
    }
  }
  return changed;
}

/** One text stream of an answer and where its held text goes when it ends. */
interface TextStream {
  readonly restorer: StreamRestorer;
  /** OpenAI: choice index; Anthropic: content block index. */
  readonly index: number;
  /** OpenAI: `content`, `refusal` or a tool call's `arguments`; Anthropic: the delta type. */
  readonly field: 'content' | 'refusal' | 'arguments' | 'text_delta' | 'input_json_delta';
  /** OpenAI tool call index. */
  readonly toolIndex: number;
}

/** Incremental restore over the SSE events of one answer (one per exchange). */
export class SseRestore {
  private readonly streams = new Map<string, TextStream>();
  /** Fields of the last OpenAI chunk besides `choices`/`usage`, for synthesized chunks. */
  private template: Obj | undefined;

  constructor(
    private readonly session: PiiSession,
    private readonly dialect: Dialect,
    private readonly observe?: TextObserver,
  ) {}

  /** Characters held back across all streams. */
  get held(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.restorer.held;
    return n;
  }

  /**
   * Rewrites one chunk's events (a new array, or undefined when nothing changed). `end`: the
   * last chunk of the body; whatever is still held is emitted after its events.
   */
  rewrite(events: readonly SseEvent[], end: boolean): SseEvent[] | undefined {
    let out: SseEvent[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const r = this.dialect === 'openai' ? this.openaiEvent(e) : this.anthropicEvent(e);
      if (r === undefined) {
        out?.push(e);
        continue;
      }
      out ??= events.slice(0, i);
      out.push(...r);
    }
    if (end && this.held > 0) {
      out ??= events.slice();
      out.push(...this.flushAll(events[events.length - 1]?.id));
    }
    return out;
  }

  private stream(key: string, mode: RestoreMode, index: number, field: TextStream['field'], toolIndex = 0): TextStream {
    let s = this.streams.get(key);
    if (s === undefined) this.streams.set(key, (s = { restorer: this.session.restorer(mode), index, field, toolIndex }));
    return s;
  }

  private push(s: TextStream, piece: string): string {
    if (piece.length > 0) this.observe?.(piece);
    return s.restorer.push(piece);
  }

  /** Replacement events for `e`, or undefined to keep it as is. */
  private openaiEvent(e: SseEvent): SseEvent[] | undefined {
    const held = this.held;
    if (e.data === '[DONE]') return held > 0 ? [...this.flushAll(e.id), e] : undefined;
    if (held === 0 && this.observe === undefined && !mayHoldPlaceholder(e.data)) return undefined;
    const obj = parse(e.data);
    if (obj === undefined || !Array.isArray(obj['choices'])) return undefined;
    const { choices: _c, usage: _u, ...template } = obj;
    this.template = template;
    let changed = false;
    for (const choice of obj['choices'] as unknown[]) {
      if (!isObj(choice)) continue;
      const index = typeof choice['index'] === 'number' ? choice['index'] : 0;
      let delta = choice['delta'];
      if (isObj(delta)) {
        for (const field of ['content', 'refusal'] as const) {
          const v = delta[field];
          if (typeof v !== 'string') continue;
          const r = this.push(this.stream(`${field}:${index}`, 'text', index, field), v);
          if (r !== v) {
            delta[field] = r;
            changed = true;
          }
        }
        const calls = delta['tool_calls'];
        if (Array.isArray(calls)) {
          for (const call of calls) {
            if (!isObj(call) || !isObj(call['function'])) continue;
            const fn = call['function'];
            const v = fn['arguments'];
            if (typeof v !== 'string') continue;
            const t = typeof call['index'] === 'number' ? call['index'] : 0;
            const r = this.push(this.stream(`arguments:${index}:${t}`, 'json', index, 'arguments', t), v);
            if (r !== v) {
              fn['arguments'] = r;
              changed = true;
            }
          }
        }
      }
      const finish = choice['finish_reason'];
      if (finish !== null && finish !== undefined) {
        // The choice is over: its held text goes into this chunk, after its own delta.
        for (const [key, s] of this.streams) {
          if (s.index !== index || s.field === 'text_delta' || s.field === 'input_json_delta') continue;
          const rest = s.restorer.flush();
          this.streams.delete(key);
          if (rest.length === 0) continue;
          if (!isObj(delta)) choice['delta'] = delta = {};
          appendOpenAI(delta as Obj, s, rest);
          changed = true;
        }
      }
    }
    return changed ? [{ ...e, data: JSON.stringify(obj) }] : undefined;
  }

  private anthropicEvent(e: SseEvent): SseEvent[] | undefined {
    const held = this.held;
    const type = e.event;
    if (type === 'message_stop' || type === 'message_delta') return held > 0 ? [...this.flushAll(e.id), e] : undefined;
    if (type === 'content_block_stop') {
      if (held === 0) return undefined;
      const obj = parse(e.data);
      const index = obj !== undefined && typeof obj['index'] === 'number' ? obj['index'] : 0;
      const s = this.streams.get(`block:${index}`);
      if (s === undefined) return undefined;
      this.streams.delete(`block:${index}`);
      const rest = s.restorer.flush();
      return rest.length === 0 ? undefined : [anthropicDelta(s, rest, e.id), e];
    }
    if (type !== 'content_block_delta' && type !== 'content_block_start') return undefined;
    if (held === 0 && this.observe === undefined && !mayHoldPlaceholder(e.data)) return undefined;
    const obj = parse(e.data);
    if (obj === undefined) return undefined;
    const index = typeof obj['index'] === 'number' ? obj['index'] : 0;
    if (type === 'content_block_start') {
      // A text block may start with text (normally empty): it is the block's first piece.
      const block = obj['content_block'];
      if (!isObj(block) || block['type'] !== 'text' || typeof block['text'] !== 'string' || block['text'].length === 0) return undefined;
      const v = block['text'];
      const r = this.push(this.stream(`block:${index}`, 'text', index, 'text_delta'), v);
      if (r === v) return undefined;
      block['text'] = r;
      return [{ ...e, data: JSON.stringify(obj) }];
    }
    const delta = obj['delta'];
    if (!isObj(delta)) return undefined;
    let key: 'text' | 'partial_json';
    let s: TextStream;
    if (delta['type'] === 'text_delta') s = this.stream(`block:${index}`, 'text', index, 'text_delta'), (key = 'text');
    else if (delta['type'] === 'input_json_delta') s = this.stream(`block:${index}`, 'json', index, 'input_json_delta'), (key = 'partial_json');
    else return undefined; // thinking, signatures, citations: not restored
    const v = delta[key];
    if (typeof v !== 'string') return undefined;
    const r = this.push(s, v);
    if (r === v) return undefined;
    delta[key] = r;
    return [{ ...e, data: JSON.stringify(obj) }];
  }

  /** Events carrying everything still held, one per stream; empties the streams. */
  private flushAll(id: string | undefined): SseEvent[] {
    const out: SseEvent[] = [];
    for (const s of this.streams.values()) {
      const rest = s.restorer.flush();
      if (rest.length === 0) continue;
      if (this.dialect === 'anthropic') out.push(anthropicDelta(s, rest, id));
      else {
        const delta: Obj = {};
        appendOpenAI(delta, s, rest);
        const data = { ...this.template, choices: [{ index: s.index, delta, finish_reason: null }] };
        out.push({ event: undefined, data: JSON.stringify(data), id, retry: undefined });
      }
    }
    this.streams.clear();
    return out;
  }
}

function parse(data: string): Obj | undefined {
  try {
    const v: unknown = JSON.parse(data);
    return isObj(v) ? v : undefined;
  } catch {
    return undefined; // not JSON (a comment-like payload): passed through untouched
  }
}

/** Appends held text of stream `s` to an OpenAI delta (after what the delta already says). */
function appendOpenAI(delta: Obj, s: TextStream, rest: string): void {
  if (s.field === 'content' || s.field === 'refusal') {
    const v = delta[s.field];
    delta[s.field] = typeof v === 'string' ? v + rest : rest;
    return;
  }
  let calls = delta['tool_calls'];
  if (!Array.isArray(calls)) delta['tool_calls'] = calls = [];
  const list = calls as unknown[];
  const call = list.find((c) => isObj(c) && (c['index'] ?? 0) === s.toolIndex) as Obj | undefined;
  if (call === undefined) {
    list.push({ index: s.toolIndex, function: { arguments: rest } });
    return;
  }
  const fn = isObj(call['function']) ? call['function'] : (call['function'] = {});
  const v = (fn as Obj)['arguments'];
  (fn as Obj)['arguments'] = typeof v === 'string' ? v + rest : rest;
}

/** A content_block_delta carrying held text of block `s`. */
function anthropicDelta(s: TextStream, rest: string, id: string | undefined): SseEvent {
  const delta = s.field === 'input_json_delta' ? { type: 'input_json_delta', partial_json: rest } : { type: 'text_delta', text: rest };
  return { event: 'content_block_delta', data: JSON.stringify({ type: 'content_block_delta', index: s.index, delta }), id, retry: undefined };
}
