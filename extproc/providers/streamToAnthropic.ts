/**
 * @module providers/streamToAnthropic
 * An OpenAI Chat Completions stream rewritten, event by event, as an Anthropic Messages stream
 * for an Anthropic client served by an OpenAI-dialect provider (OpenAI, Mistral).
 *
 * Each input event yields its output at once (nothing is held back): the first chunk opens the
 * message (`message_start`), text and tool-call deltas open, fill and close content blocks
 * (`content_block_start` / `_delta` / `_stop`, tool arguments as `input_json_delta`). The only
 * thing deferred is the closing `message_delta` + `message_stop`: OpenAI reports usage in a
 * chunk after the one with `finish_reason` (with `stream_options.include_usage`), so the close
 * is written at `[DONE]`, or by {@link OpenAIToAnthropicStream.terminate} when the stream ends
 * after its finish reason without `[DONE]`.
 */
import { eventJson, type SseEvent } from './sse.js';
import type { AnthropicStopReason, OpenAIUsage } from './types.js';
import { toAnthropicStop, toAnthropicUsage } from './reasons.js';
import { readError, streamErrorEvent } from './errors.js';

export interface OpenAIToAnthropicStreamOptions {
  /** Model named to the client (default: the chunks' `model`). */
  model?: string;
  /**
   * Input tokens to announce in `message_start` (OpenAI reports them only at the end; the exact
   * figure follows in `message_delta`, which the Anthropic SDK takes over). Default 0.
   */
  inputTokensEstimate?: number;
}

type Json = Record<string, unknown>;
function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const STOP_BLOCK = (i: number): string => `event: content_block_stop\ndata: {"type":"content_block_stop","index":${i}}\n\n`;

interface ToolSlot {
  id: string | undefined;
  block: number;
}

/** Incremental OpenAI → Anthropic stream translator; one per response. */
export class OpenAIToAnthropicStream {
  private started = false;
  private done = false;
  /** Index of the open content block, -1 when none. */
  private open = -1;
  private openIsText = false;
  private nextBlock = 0;
  /** OpenAI tool_call index → its Anthropic block. */
  private tools: ToolSlot[] = [];
  private lastTool: ToolSlot | undefined;
  private stop: AnthropicStopReason | undefined;
  private usage: OpenAIUsage | undefined;

  constructor(private readonly opts: OpenAIToAnthropicStreamOptions = {}) {}

  /** True once the client's stream has its terminal event (message_stop or error). */
  get finished(): boolean {
    return this.done;
  }

  /** Translates one upstream event; `json` is its parsed data when the caller already has it. Returns SSE text ('' for none). */
  push(e: SseEvent, json?: unknown): string {
    if (this.done) return '';
    if (e.data === '[DONE]') return this.close();
    const chunk = json ?? eventJson(e); // not JSON: no OpenAI chunk is, so nothing to translate
    if (!isObj(chunk)) return '';
    if (chunk.error !== undefined) {
      this.done = true;
      return streamErrorEvent('anthropic', 500, readError(chunk, 500));
    }
    let out = this.started ? '' : this.start(chunk);
    const choices = chunk.choices;
    const choice = Array.isArray(choices) ? choices[0] : undefined;
    if (isObj(choice)) {
      const delta = choice.delta;
      if (isObj(delta)) {
        if (typeof delta.content === 'string' && delta.content !== '') out += this.text(delta.content);
        if (typeof delta.refusal === 'string' && delta.refusal !== '') out += this.text(delta.refusal);
        if (Array.isArray(delta.tool_calls)) for (const tc of delta.tool_calls) if (isObj(tc)) out += this.toolDelta(tc);
      }
      const fr = choice.finish_reason;
      if (typeof fr === 'string' && fr !== '') {
        this.stop = toAnthropicStop(fr);
        out += this.closeBlock();
      }
    }
    if (isObj(chunk.usage)) this.usage = chunk.usage as unknown as OpenAIUsage;
    return out;
  }

  /**
   * The upstream stream ended (or was cut) without `[DONE]`. After a finish reason the answer is
   * complete and the message is closed normally; before it, the client gets an `error` event
   * (never a silently truncated message). Returns '' when the stream already ended.
   */
  terminate(reason: string): string {
    if (this.done) return '';
    if (this.stop !== undefined) return this.close();
    this.done = true;
    return streamErrorEvent('anthropic', 500, { message: reason });
  }

  private start(chunk: Json): string {
    this.started = true;
    const message = {
      id: typeof chunk.id === 'string' ? chunk.id : '',
      type: 'message',
      role: 'assistant',
      model: this.opts.model ?? (typeof chunk.model === 'string' ? chunk.model : ''),
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: this.opts.inputTokensEstimate ?? 0, output_tokens: 0 },
    };
    return `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message })}\n\n`;
  }

  private closeBlock(): string {
    if (this.open === -1) return '';
    const s = STOP_BLOCK(this.open);
    this.open = -1;
    return s;
  }

  private text(t: string): string {
    let out = '';
    if (this.open === -1 || !this.openIsText) {
      out = this.closeBlock();
      this.open = this.nextBlock++;
      this.openIsText = true;
      out += `event: content_block_start\ndata: {"type":"content_block_start","index":${this.open},"content_block":{"type":"text","text":""}}\n\n`;
    }
    return `${out}event: content_block_delta\ndata: {"type":"content_block_delta","index":${this.open},"delta":{"type":"text_delta","text":${JSON.stringify(t)}}}\n\n`;
  }

  private toolDelta(tc: Json): string {
    const index = typeof tc.index === 'number' ? tc.index : undefined;
    const id = typeof tc.id === 'string' && tc.id !== '' ? tc.id : undefined;
    const fn = isObj(tc.function) ? tc.function : undefined;
    let slot = index !== undefined ? this.tools[index] : this.lastTool;
    let out = '';
    // A new call: an index not seen yet, or (providers that reuse index 0) a different id.
    if (slot === undefined || (id !== undefined && slot.id !== undefined && slot.id !== id)) {
      out = this.closeBlock();
      slot = { id, block: this.nextBlock++ };
      if (index !== undefined) this.tools[index] = slot;
      this.lastTool = slot;
      this.open = slot.block;
      this.openIsText = false;
      const name = fn && typeof fn.name === 'string' ? fn.name : '';
      out += `event: content_block_start\ndata: {"type":"content_block_start","index":${slot.block},"content_block":{"type":"tool_use","id":${JSON.stringify(id ?? '')},"name":${JSON.stringify(name)},"input":{}}}\n\n`;
    }
    const args = fn?.arguments;
    if (typeof args === 'string' && args !== '') {
      out += `event: content_block_delta\ndata: {"type":"content_block_delta","index":${slot.block},"delta":{"type":"input_json_delta","partial_json":${JSON.stringify(args)}}}\n\n`;
    }
    return out;
  }

  /** message_delta (stop reason, usage) and message_stop. */
  private close(): string {
    this.done = true;
    let out = this.started ? '' : this.start({});
    out += this.closeBlock();
    const u = toAnthropicUsage(this.usage);
    const usage = this.usage
      ? { input_tokens: u.input_tokens, cache_creation_input_tokens: u.cache_creation_input_tokens, cache_read_input_tokens: u.cache_read_input_tokens, output_tokens: u.output_tokens }
      : { output_tokens: 0 };
    const delta = { type: 'message_delta', delta: { stop_reason: this.stop ?? 'end_turn', stop_sequence: null }, usage };
    return `${out}event: message_delta\ndata: ${JSON.stringify(delta)}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n`;
  }
}
