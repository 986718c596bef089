/**
 * @module cache/replay
 * A cached answer in a neutral form, and how it is replayed to a client: the dialect's JSON
 * response, or a well-formed SSE stream (OpenAI chunks with a role chunk, content deltas, the
 * finish chunk, a usage chunk when the client asked `include_usage`, `data: [DONE]`; or
 * Anthropic's message_start / content_block_start / content_block_delta… / content_block_stop /
 * message_delta / message_stop). Pure: no I/O, no pipeline.
 *
 * The neutral form keeps the finish reason in the words of the dialect it was captured from and
 * maps it when replayed in the other one, so an entry could serve either dialect (scopes include
 * the dialect today, so in practice it is replayed in its own).
 */
import { randomBytes } from 'node:crypto';
import { formatSseEvent } from '../providers/sse.js';
import { toAnthropicStop, toOpenAIFinish } from '../providers/reasons.js';
import type { Dialect } from './scope.js';

/** What the cache stores for an answer (the `answer` jsonb column). */
export interface CachedAnswer {
  readonly v: 1;
  /** Dialect the answer was captured in (its `finishReason` is in that dialect's words). */
  readonly dialect: Dialect;
  readonly text: string;
  readonly finishReason: string;
  /** The provider's usage for the original answer: what a hit saves. */
  readonly usage: { readonly inputTokens: number; readonly outputTokens: number };
  /** `model` as the provider reported it in the answer. */
  readonly model: string;
}

/** True when `v` has the shape of a CachedAnswer (rows are read back from the store). */
export function isCachedAnswer(v: unknown): v is CachedAnswer {
  if (v === null || typeof v !== 'object') return false;
  const a = v as Record<string, unknown>;
  const u = a.usage as Record<string, unknown> | null | undefined;
  return (
    a.v === 1 &&
    (a.dialect === 'openai' || a.dialect === 'anthropic') &&
    typeof a.text === 'string' &&
    typeof a.finishReason === 'string' &&
    typeof a.model === 'string' &&
    u !== null &&
    typeof u === 'object' &&
    typeof u.inputTokens === 'number' &&
    typeof u.outputTokens === 'number'
  );
}

export interface ReplayOptions {
  /** The client asked for `stream: true`. */
  stream: boolean;
  /** OpenAI `stream_options.include_usage`. */
  includeUsage?: boolean;
  /** Seconds since epoch for OpenAI's `created`. Default now. */
  created?: number;
  /** Response id. Default a fresh random one per replay. */
  id?: string;
}

export interface ReplayBody {
  readonly contentType: string;
  readonly body: string;
}

function finishFor(dialect: Dialect, a: CachedAnswer): string {
  if (a.dialect === dialect) return a.finishReason;
  return dialect === 'openai' ? toOpenAIFinish(a.finishReason) : toAnthropicStop(a.finishReason);
}

/**
 * Splits text into deltas of whole words (with their leading whitespace), about `size`
 * characters each, so a replayed stream looks like a provider's and no delta splits a
 * character. Concatenating the pieces gives the text back exactly.
 */
export function textDeltas(text: string, size = 48): string[] {
  if (text.length === 0) return [];
  const out: string[] = [];
  const words = text.match(/\s*\S+|\s+$/gu) ?? [text];
  let cur = '';
  for (const w of words) {
    if (cur.length > 0 && cur.length + w.length > size) {
      out.push(cur);
      cur = '';
    }
    cur += w;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function openaiUsage(a: CachedAnswer): Record<string, number> {
  return { prompt_tokens: a.usage.inputTokens, completion_tokens: a.usage.outputTokens, total_tokens: a.usage.inputTokens + a.usage.outputTokens };
}

function anthropicUsage(a: CachedAnswer): Record<string, number> {
  return { input_tokens: a.usage.inputTokens, output_tokens: a.usage.outputTokens };
}

/** The answer as `dialect`'s response body: JSON, or SSE when `opts.stream`. */
export function replayAnswer(a: CachedAnswer, dialect: Dialect, opts: ReplayOptions): ReplayBody {
  const finish = finishFor(dialect, a);
  if (dialect === 'openai') {
    const id = opts.id ?? `chatcmpl-cache${randomBytes(12).toString('hex')}`;
    const created = opts.created ?? Math.floor(Date.now() / 1000);
    if (!opts.stream) {
      const body = {
        id,
        object: 'chat.completion',
        created,
        model: a.model,
        choices: [{ index: 0, message: { role: 'assistant', content: a.text, refusal: null }, logprobs: null, finish_reason: finish }],
        usage: openaiUsage(a),
      };
      return { contentType: 'application/json', body: JSON.stringify(body) };
    }
    const base = { id, object: 'chat.completion.chunk', created, model: a.model };
    const usageField = opts.includeUsage ? { usage: null } : {};
    const chunk = (delta: Record<string, unknown>, finishReason: string | null): string =>
      formatSseEvent({ data: JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }], ...usageField }) });
    let sse = chunk({ role: 'assistant', content: '' }, null);
    for (const piece of textDeltas(a.text)) sse += chunk({ content: piece }, null);
    sse += chunk({}, finish);
    if (opts.includeUsage) sse += formatSseEvent({ data: JSON.stringify({ ...base, choices: [], usage: openaiUsage(a) }) });
    sse += formatSseEvent({ data: '[DONE]' });
    return { contentType: 'text/event-stream', body: sse };
  }
  const id = opts.id ?? `msg_cache${randomBytes(12).toString('hex')}`;
  if (!opts.stream) {
    const body = {
      id,
      type: 'message',
      role: 'assistant',
      model: a.model,
      content: [{ type: 'text', text: a.text }],
      stop_reason: finish,
      stop_sequence: null,
      usage: anthropicUsage(a),
    };
    return { contentType: 'application/json', body: JSON.stringify(body) };
  }
  const ev = (event: string, data: Record<string, unknown>): string => formatSseEvent({ event, data: JSON.stringify({ type: event, ...data }) });
  let sse = ev('message_start', {
    message: { id, type: 'message', role: 'assistant', model: a.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: a.usage.inputTokens, output_tokens: 0 } },
  });
  sse += ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  for (const piece of textDeltas(a.text)) sse += ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } });
  sse += ev('content_block_stop', { index: 0 });
  sse += ev('message_delta', { delta: { stop_reason: finish, stop_sequence: null }, usage: { output_tokens: a.usage.outputTokens } });
  sse += ev('message_stop', {});
  return { contentType: 'text/event-stream', body: sse };
}
