// What a fake answers to a chat request: reply text, truncation at max_tokens, token counts.
// Shared by the OpenAI, Mistral and Anthropic dialects (they differ only in how messages and
// the system prompt are laid out, which the caller flattens into `messageTexts`).
import type { HandlerContext, ProviderKind } from './core.js';
import { isObject } from './core.js';
import { contentText, countTokens, defaultReplyText, promptTokenCount, truncateToTokens } from './text.js';

export interface ChatAnswer {
  model: string;
  text: string;
  /** True when the reply was cut at the request's max tokens. */
  truncated: boolean;
  inputTokens: number;
  outputTokens: number;
}

export interface FlatChat {
  /** One text per message (system prompt first when there is one). */
  messageTexts: string[];
  lastUserText: string;
}

/** OpenAI / Mistral `messages` (system messages are ordinary messages there). */
export function flattenOpenAIMessages(body: Record<string, unknown>): FlatChat {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const messageTexts: string[] = [];
  let lastUserText = '';
  for (const m of messages) {
    if (!isObject(m)) continue;
    const text = contentText(m.content);
    messageTexts.push(text);
    if (m.role === 'user') lastUserText = text;
  }
  return { messageTexts, lastUserText };
}

/** Anthropic `system` + `messages`. */
export function flattenAnthropicMessages(body: Record<string, unknown>): FlatChat {
  const flat = flattenOpenAIMessages(body);
  if (body.system !== undefined) {
    const system = contentText(body.system);
    if (system.length > 0) flat.messageTexts.unshift(system);
  }
  return flat;
}

/** The reply and usage a fake reports for this request (before any behaviour override). */
export function answerFor(
  kind: ProviderKind,
  body: Record<string, unknown>,
  flat: FlatChat,
  opts: {
    reply?: string | ((ctx: { kind: ProviderKind; body: Record<string, unknown>; lastUserText: string; index: number }) => string);
    text?: string;
    model?: string;
    index?: number;
  } = {},
): ChatAnswer {
  let text: string;
  if (opts.text !== undefined) text = opts.text;
  else if (typeof opts.reply === 'string') text = opts.reply;
  else if (typeof opts.reply === 'function')
    text = opts.reply({ kind, body, lastUserText: flat.lastUserText, index: opts.index ?? 0 });
  else text = defaultReplyText(kind, flat.lastUserText);

  const maxRaw = body.max_completion_tokens ?? body.max_tokens;
  const max = typeof maxRaw === 'number' && Number.isFinite(maxRaw) ? maxRaw : undefined;
  let truncated = false;
  if (max !== undefined && countTokens(text) > max) {
    text = truncateToTokens(text, max);
    truncated = true;
  }
  const model = opts.model ?? (typeof body.model === 'string' ? body.model : 'unknown-model');
  return { model, text, truncated, inputTokens: promptTokenCount(flat.messageTexts), outputTokens: countTokens(text) };
}

/** answerFor with the context's options and behaviour applied. */
export function answerInContext(ctx: HandlerContext, body: Record<string, unknown>, flat: FlatChat): ChatAnswer {
  const b = ctx.behaviour;
  const a = answerFor(ctx.kind, body, flat, {
    ...(ctx.options.reply !== undefined ? { reply: ctx.options.reply } : {}),
    ...(b.text !== undefined ? { text: b.text } : {}),
    ...((b.model ?? ctx.options.model) !== undefined ? { model: (b.model ?? ctx.options.model)! } : {}),
    index: ctx.request.index,
  });
  if (b.usage?.inputTokens !== undefined) a.inputTokens = b.usage.inputTokens;
  if (b.usage?.outputTokens !== undefined) a.outputTokens = b.usage.outputTokens;
  return a;
}
