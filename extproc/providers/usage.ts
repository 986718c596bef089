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
import { eventJson, type SseEvent } from './sse.js';
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
  private pieces: string[] = [];
  private joined: string | undefined = '';
  private chars = 0;

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
    return this.chars;
  }

  /** The model output seen so far, joined once per change. */
  get text(): string {
    if (this.joined === undefined) {
      this.joined = this.pieces.join('');
      this.pieces = [this.joined];
    }
    return this.joined;
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
        if (ev.type === 'response.output_text.delta' && typeof ev.delta === 'string') this.addText(ev.delta);
        else if ((ev.type === 'response.completed' || ev.type === 'response.incomplete') && isObj(ev.response)) {
          if (isObj(ev.response.usage)) this.openaiUsage(ev.response.usage);
          this.ended = true;
        }
        return;
      }
      const choices = ev.choices;
      if (!Array.isArray(choices)) return;
      for (const c of choices) {
        const d = isObj(c) && isObj(c.delta) ? c.delta : undefined;
        if (!d) continue;
        if (typeof d.content === 'string') this.addText(d.content);
        else if (typeof d.reasoning_content === 'string') this.addText(d.reasoning_content);
        if (Array.isArray(d.tool_calls)) {
          for (const tc of d.tool_calls) if (isObj(tc) && isObj(tc.function) && typeof tc.function.arguments === 'string') this.addText(tc.function.arguments);
        }
      }
      return;
    }
    switch (ev.type) {
      case 'content_block_delta': {
        const d = ev.delta;
        if (!isObj(d)) return;
        const t = typeof d.text === 'string' ? d.text : typeof d.partial_json === 'string' ? d.partial_json : typeof d.thinking === 'string' ? d.thinking : undefined;
        if (t !== undefined) this.addText(t);
        return;
      }
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

  private addText(t: string): void {
    if (t === '') return;
    this.pieces.push(t);
    this.chars += t.length;
    this.joined = undefined;
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
