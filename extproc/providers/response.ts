/**
 * @module providers/response
 * Non-streamed answers translated between the dialects: an OpenAI `chat.completion` as an
 * Anthropic `message` and back. The provider's id and model are kept (the client sees which
 * model served); only the first choice is translated (requests are translated with n = 1).
 */
import type { AnthropicContentBlock, AnthropicResponse, OpenAIChatResponse, OpenAIToolCall } from './types.js';
import { toAnthropicStop, toAnthropicUsage, toOpenAIFinish, toOpenAIUsage } from './reasons.js';

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Tool arguments as JSON; arguments a model produced that are not JSON are passed on as a string field rather than lost. */
function parseArgs(args: unknown): unknown {
  if (typeof args !== 'string' || args === '') return {};
  try {
    return JSON.parse(args);
  } catch {
    return { _raw_arguments: args };
  }
}

/** Translates an OpenAI Chat Completions response body into an Anthropic Messages response body. */
export function openaiToAnthropicResponse(body: unknown, opts: { model?: string } = {}): AnthropicResponse {
  const b = isObj(body) ? body : {};
  const choices = Array.isArray(b.choices) ? b.choices : [];
  const choice: Json = isObj(choices[0]) ? choices[0] : {};
  const msg: Json = isObj(choice.message) ? choice.message : {};
  const content: AnthropicContentBlock[] = [];
  if (typeof msg.content === 'string' && msg.content !== '') content.push({ type: 'text', text: msg.content });
  else if (Array.isArray(msg.content)) {
    for (const p of msg.content) if (isObj(p) && p.type === 'text' && typeof p.text === 'string' && p.text !== '') content.push({ type: 'text', text: p.text });
  }
  if (typeof msg.refusal === 'string' && msg.refusal !== '') content.push({ type: 'text', text: msg.refusal });
  if (Array.isArray(msg.tool_calls)) {
    for (const tc of msg.tool_calls) {
      if (!isObj(tc) || !isObj(tc.function)) continue;
      content.push({ type: 'tool_use', id: String(tc.id ?? ''), name: String(tc.function.name ?? ''), input: parseArgs(tc.function.arguments) });
    }
  }
  return {
    id: String(b.id ?? ''),
    type: 'message',
    role: 'assistant',
    model: opts.model ?? String(b.model ?? ''),
    content,
    stop_reason: toAnthropicStop(choice.finish_reason as string | null | undefined),
    stop_sequence: null,
    usage: toAnthropicUsage(isObj(b.usage) ? (b.usage as never) : undefined),
  };
}

/** Translates an Anthropic Messages response body into an OpenAI Chat Completions response body. */
export function anthropicToOpenAIResponse(body: unknown, opts: { model?: string; created?: number } = {}): OpenAIChatResponse {
  const b = isObj(body) ? body : {};
  let text: string | null = null;
  const calls: OpenAIToolCall[] = [];
  for (const block of Array.isArray(b.content) ? b.content : []) {
    if (!isObj(block)) continue;
    if (block.type === 'text' && typeof block.text === 'string') text = text === null ? block.text : text + block.text;
    else if (block.type === 'tool_use') {
      calls.push({ id: String(block.id ?? ''), type: 'function', function: { name: String(block.name ?? ''), arguments: JSON.stringify(block.input ?? {}) } });
    }
    // thinking / redacted_thinking: Chat Completions has no place for them.
  }
  const message: OpenAIChatResponse['choices'][number]['message'] = { role: 'assistant', content: text, refusal: null };
  if (calls.length > 0) message.tool_calls = calls;
  return {
    id: String(b.id ?? ''),
    object: 'chat.completion',
    created: opts.created ?? Math.floor(Date.now() / 1000),
    model: opts.model ?? String(b.model ?? ''),
    choices: [{ index: 0, message, logprobs: null, finish_reason: toOpenAIFinish(b.stop_reason as string | null | undefined) }],
    usage: toOpenAIUsage(isObj(b.usage) ? (b.usage as never) : undefined),
  };
}
