/**
 * @module providers/streamToOpenAI
 * An Anthropic Messages stream rewritten, event by event, as an OpenAI Chat Completions stream
 * for an OpenAI client served by Anthropic. Every input event yields its output at once:
 * `message_start` → the role chunk; text deltas → content chunks; a `tool_use` block → a
 * tool_calls chunk with index, id, name and empty arguments, its `input_json_delta`s → argument
 * pieces; `message_delta` → the finish_reason chunk; `message_stop` → the usage chunk (when the
 * client asked `stream_options.include_usage`) and `data: [DONE]`. Thinking blocks and pings
 * produce nothing.
 *
 * The chunk envelope (`id`, `created`, `model`) is fixed at `message_start`, so each chunk is
 * written as a prefix string plus the choice's JSON.
 */
import { eventJson, type SseEvent } from './sse.js';
import type { AnthropicUsage, OpenAIFinishReason } from './types.js';
import { toOpenAIFinish, toOpenAIUsage } from './reasons.js';
import { readError, streamErrorEvent, statusOfAnthropicErrorType } from './errors.js';

export interface AnthropicToOpenAIStreamOptions {
  /** The client sent `stream_options.include_usage: true`: send OpenAI's final usage chunk. */
  includeUsage: boolean;
  /** Model named to the client (default: the one in `message_start`). */
  model?: string;
  /** `created` of every chunk, seconds (default: now, when the translator is made). */
  created?: number;
}

type Json = Record<string, unknown>;
function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function n(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

/** Incremental Anthropic → OpenAI stream translator; one per response. */
export class AnthropicToOpenAIStream {
  private done = false;
  private prefix = '';
  private readonly suffix: string;
  private readonly created: number;
  private id = '';
  private model = '';
  /** Anthropic block index → OpenAI tool_calls index (-1: not a tool block). */
  private toolOfBlock: number[] = [];
  private nextTool = 0;
  private finish: OpenAIFinishReason | undefined;
  private usage: Partial<AnthropicUsage> = {};

  constructor(private readonly opts: AnthropicToOpenAIStreamOptions) {
    this.created = opts.created ?? Math.floor(Date.now() / 1000);
    // OpenAI writes `"usage":null` in every chunk of an include_usage stream; so do we.
    this.suffix = opts.includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  }

  /** True once the client's stream has its terminal event (`[DONE]` or an error). */
  get finished(): boolean {
    return this.done;
  }

  /** Translates one upstream event; `json` is its parsed data when the caller already has it. Returns SSE text ('' for none). */
  push(e: SseEvent, json?: unknown): string {
    if (this.done) return '';
    const ev = json ?? eventJson(e);
    if (!isObj(ev)) return '';
    // The `type` in the data is authoritative (the `event:` line repeats it).
    switch (ev.type) {
      case 'message_start':
        return this.start(isObj(ev.message) ? ev.message : {});
      case 'content_block_start':
        return this.blockStart(ev);
      case 'content_block_delta':
        return this.blockDelta(ev);
      case 'message_delta':
        return this.messageDelta(ev);
      case 'message_stop':
        return this.stop();
      case 'error': {
        this.done = true;
        const err = isObj(ev.error) ? ev.error : {};
        const status = statusOfAnthropicErrorType(typeof err.type === 'string' ? err.type : 'api_error');
        return streamErrorEvent('openai', status, readError(ev, status));
      }
      default:
        return ''; // ping, content_block_stop
    }
  }

  /**
   * The upstream stream ended (or was cut) before `message_stop`. After the finish reason the
   * answer is complete: usage and `[DONE]` follow. Before it the client gets an error frame,
   * which the OpenAI SDK raises (never a silently truncated answer). '' when already ended.
   */
  terminate(reason: string): string {
    if (this.done) return '';
    if (this.finish !== undefined) return this.stop();
    this.done = true;
    return streamErrorEvent('openai', 502, { message: reason, code: 'stream_truncated' });
  }

  private ensurePrefix(): void {
    if (this.prefix !== '') return;
    const model = this.opts.model ?? this.model;
    this.prefix = `data: {"id":${JSON.stringify(this.id)},"object":"chat.completion.chunk","created":${this.created},"model":${JSON.stringify(model)},"choices":[`;
  }

  private chunk(delta: string, finish: string | null = null): string {
    this.ensurePrefix();
    return `${this.prefix}{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}${this.suffix}`;
  }

  private start(message: Json): string {
    if (typeof message.id === 'string') this.id = message.id;
    if (typeof message.model === 'string') this.model = message.model;
    if (isObj(message.usage)) this.mergeUsage(message.usage);
    this.prefix = '';
    return this.chunk('{"role":"assistant","content":""}');
  }

  private blockStart(ev: Json): string {
    const index = n(ev.index) ?? 0;
    const block = isObj(ev.content_block) ? ev.content_block : {};
    if (block.type === 'tool_use') {
      const t = this.nextTool++;
      this.toolOfBlock[index] = t;
      return this.chunk(`{"tool_calls":[{"index":${t},"id":${JSON.stringify(String(block.id ?? ''))},"type":"function","function":{"name":${JSON.stringify(String(block.name ?? ''))},"arguments":""}}]}`);
    }
    this.toolOfBlock[index] = -1;
    if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') return this.chunk(`{"content":${JSON.stringify(block.text)}}`);
    return '';
  }

  private blockDelta(ev: Json): string {
    const d = ev.delta;
    if (!isObj(d)) return '';
    if (d.type === 'text_delta') {
      return typeof d.text === 'string' && d.text !== '' ? this.chunk(`{"content":${JSON.stringify(d.text)}}`) : '';
    }
    if (d.type === 'input_json_delta') {
      const t = this.toolOfBlock[n(ev.index) ?? 0];
      if (t === undefined || t < 0 || typeof d.partial_json !== 'string' || d.partial_json === '') return '';
      return this.chunk(`{"tool_calls":[{"index":${t},"function":{"arguments":${JSON.stringify(d.partial_json)}}}]}`);
    }
    return ''; // thinking_delta, signature_delta, citations_delta
  }

  private messageDelta(ev: Json): string {
    if (isObj(ev.usage)) this.mergeUsage(ev.usage);
    const d = isObj(ev.delta) ? ev.delta : {};
    if (typeof d.stop_reason !== 'string' || this.finish !== undefined) return '';
    this.finish = toOpenAIFinish(d.stop_reason);
    return this.chunk('{}', this.finish);
  }

  /** Usage counters are cumulative totals: the latest value of each replaces the earlier one. */
  private mergeUsage(u: Json): void {
    for (const k of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'] as const) {
      const v = n(u[k]);
      if (v !== undefined) this.usage[k] = v;
    }
    if (isObj(u.output_tokens_details)) this.usage.output_tokens_details = u.output_tokens_details as { thinking_tokens?: number };
  }

  private stop(): string {
    this.done = true;
    let out = '';
    if (this.finish === undefined) {
      this.finish = 'stop';
      out = this.chunk('{}', 'stop');
    }
    if (this.opts.includeUsage) {
      this.ensurePrefix();
      out += `${this.prefix}],"usage":${JSON.stringify(toOpenAIUsage(this.usage))}}\n\n`;
    }
    return `${out}data: [DONE]\n\n`;
  }
}
