/**
 * @module providers/requestToOpenAI
 * An Anthropic Messages request rewritten as an OpenAI Chat Completions request, for an
 * Anthropic client served by OpenAI (or, through `adaptForMistral`, by Mistral). Prompt-caching
 * markers (`cache_control`) are dropped: OpenAI caches prefixes by itself. Thinking blocks of
 * earlier turns are dropped (they only replay Anthropic's own reasoning). What OpenAI cannot
 * express (server tools, non-PDF documents, …) is refused with a {@link TranslationError}.
 */
import type { OpenAIChatRequest, OpenAIContentPart, OpenAIFunctionTool, OpenAIMessage, OpenAIToolCall, OpenAIToolChoice } from './types.js';
import { TranslationError } from './types.js';

export interface ToOpenAIOptions {
  /** Model id for the target (default: the request's own `model`). */
  model?: string;
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An Anthropic image (or PDF document) block as an OpenAI content part. */
function mediaPart(block: Json, param: string): OpenAIContentPart {
  const src = block.source;
  if (!isObj(src)) throw new TranslationError('image block needs a source', param);
  if (block.type === 'document') {
    if (src.type === 'base64' && src.media_type === 'application/pdf' && typeof src.data === 'string') {
      return { type: 'file', file: { file_data: `data:application/pdf;base64,${src.data}`, filename: 'document.pdf' } };
    }
    throw new TranslationError('only base64 PDF documents can be sent to this model', param);
  }
  if (src.type === 'base64' && typeof src.media_type === 'string' && typeof src.data === 'string') {
    return { type: 'image_url', image_url: { url: `data:${src.media_type};base64,${src.data}` } };
  }
  if (src.type === 'url' && typeof src.url === 'string') return { type: 'image_url', image_url: { url: src.url } };
  throw new TranslationError('image source must be base64 or url', param);
}

/** Text of system blocks / text-only content. */
function textOf(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new TranslationError('content must be a string or an array of blocks', param);
  let s = '';
  content.forEach((b: unknown, i) => {
    if (!isObj(b) || b.type !== 'text' || typeof b.text !== 'string') throw new TranslationError('only text blocks are allowed here', `${param}[${i}]`);
    s = s === '' ? b.text : `${s}\n\n${b.text}`;
  });
  return s;
}

function toolResultText(content: unknown, param: string): { text: string; media: OpenAIContentPart[] } {
  if (content === undefined || content === null) return { text: '', media: [] };
  if (typeof content === 'string') return { text: content, media: [] };
  if (!Array.isArray(content)) throw new TranslationError('tool_result content must be a string or an array of blocks', param);
  let text = '';
  const media: OpenAIContentPart[] = [];
  content.forEach((b: unknown, i) => {
    const p = `${param}[${i}]`;
    if (!isObj(b)) throw new TranslationError('block must be an object', p);
    if (b.type === 'text' && typeof b.text === 'string') text = text === '' ? b.text : `${text}\n\n${b.text}`;
    else if (b.type === 'image' || b.type === 'document') media.push(mediaPart(b, p));
    else throw new TranslationError(`tool_result block type ${JSON.stringify(b.type)} is not supported by this model`, p);
  });
  return { text, media };
}

/** Content parts collapse to a string when they are all text: the shape every OpenAI-dialect provider accepts. */
function compact(parts: OpenAIContentPart[]): string | OpenAIContentPart[] {
  if (parts.every((p) => p.type === 'text')) return parts.map((p) => (p as { text: string }).text).join('\n\n');
  return parts;
}

function userTurn(content: unknown, param: string, out: OpenAIMessage[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'user', content });
    return;
  }
  if (!Array.isArray(content)) throw new TranslationError('content must be a string or an array of blocks', param);
  let parts: OpenAIContentPart[] = [];
  const flush = (): void => {
    if (parts.length > 0) out.push({ role: 'user', content: compact(parts) });
    parts = [];
  };
  content.forEach((b: unknown, i) => {
    const p = `${param}[${i}]`;
    if (!isObj(b)) throw new TranslationError('block must be an object', p);
    switch (b.type) {
      case 'text':
        if (typeof b.text !== 'string') throw new TranslationError('text block needs `text`', p);
        parts.push({ type: 'text', text: b.text });
        return;
      case 'image':
      case 'document':
        parts.push(mediaPart(b, p));
        return;
      case 'tool_result': {
        if (typeof b.tool_use_id !== 'string') throw new TranslationError('tool_result needs tool_use_id', p);
        // OpenAI wants tool results as `tool` messages right after the assistant's calls: text before them
        // in the same Anthropic turn goes first as its own user message.
        flush();
        const r = toolResultText(b.content, `${p}.content`);
        // OpenAI has no error flag on tool results; the model must still learn the call failed.
        const text = b.is_error === true ? (r.text === '' ? 'Error' : `Error: ${r.text}`) : r.text;
        out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: text });
        // Tool messages carry text only: images a tool returned follow as user content.
        if (r.media.length > 0) out.push({ role: 'user', content: r.media });
        return;
      }
      case 'thinking':
      case 'redacted_thinking':
        return;
      default:
        throw new TranslationError(`content block type ${JSON.stringify(b.type)} is not supported by this model`, p);
    }
  });
  flush();
}

function assistantTurn(content: unknown, param: string, out: OpenAIMessage[]): void {
  if (typeof content === 'string') {
    out.push({ role: 'assistant', content });
    return;
  }
  if (!Array.isArray(content)) throw new TranslationError('content must be a string or an array of blocks', param);
  let text: string | null = null;
  const calls: OpenAIToolCall[] = [];
  content.forEach((b: unknown, i) => {
    const p = `${param}[${i}]`;
    if (!isObj(b)) throw new TranslationError('block must be an object', p);
    switch (b.type) {
      case 'text':
        if (typeof b.text !== 'string') throw new TranslationError('text block needs `text`', p);
        text = text === null ? b.text : `${text}${b.text}`;
        return;
      case 'tool_use':
        if (typeof b.id !== 'string' || typeof b.name !== 'string') throw new TranslationError('tool_use needs id and name', p);
        calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
        return;
      case 'thinking':
      case 'redacted_thinking':
        return;
      default:
        throw new TranslationError(`content block type ${JSON.stringify(b.type)} is not supported by this model`, p);
    }
  });
  const msg: OpenAIMessage = { role: 'assistant', content: text };
  if (calls.length > 0) msg.tool_calls = calls;
  out.push(msg);
}

function toolsOf(tools: unknown): OpenAIFunctionTool[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw new TranslationError('tools must be an array', 'tools');
  return tools.map((t: unknown, i) => {
    const p = `tools[${i}]`;
    if (!isObj(t) || typeof t.name !== 'string') throw new TranslationError('tool needs a name', p);
    if (t.type !== undefined && t.type !== 'custom') {
      throw new TranslationError(`server tool ${JSON.stringify(t.type)} is not supported by this model`, p);
    }
    const fn: OpenAIFunctionTool['function'] = { name: t.name };
    if (typeof t.description === 'string') fn.description = t.description;
    fn.parameters = isObj(t.input_schema) ? t.input_schema : { type: 'object', properties: {} };
    return { type: 'function', function: fn };
  });
}

function toolChoiceOf(choice: unknown): { choice?: OpenAIToolChoice; parallel?: false } {
  if (choice === undefined || choice === null) return {};
  if (!isObj(choice)) throw new TranslationError('tool_choice must be an object', 'tool_choice');
  const parallel = choice.disable_parallel_tool_use === true ? { parallel: false as const } : {};
  switch (choice.type) {
    case 'auto':
      return { choice: 'auto', ...parallel };
    case 'any':
      return { choice: 'required', ...parallel };
    case 'none':
      return { choice: 'none' };
    case 'tool':
      if (typeof choice.name !== 'string') throw new TranslationError('tool_choice of type tool needs a name', 'tool_choice.name');
      return { choice: { type: 'function', function: { name: choice.name } }, ...parallel };
    default:
      throw new TranslationError('tool_choice.type must be auto, any, tool or none', 'tool_choice.type');
  }
}

/** Translates an Anthropic Messages request body into an OpenAI Chat Completions request body. */
export function anthropicToOpenAIRequest(req: Record<string, unknown>, opts: ToOpenAIOptions = {}): OpenAIChatRequest {
  if (!Array.isArray(req.messages)) throw new TranslationError('messages must be an array', 'messages');
  const messages: OpenAIMessage[] = [];
  if (req.system !== undefined && req.system !== null) {
    const sys = textOf(req.system, 'system');
    if (sys !== '') messages.push({ role: 'system', content: sys });
  }
  req.messages.forEach((m: unknown, i) => {
    const p = `messages[${i}]`;
    if (!isObj(m)) throw new TranslationError('message must be an object', p);
    if (m.role === 'user') userTurn(m.content, `${p}.content`, messages);
    else if (m.role === 'assistant') assistantTurn(m.content, `${p}.content`, messages);
    else if (m.role === 'system') messages.push({ role: 'system', content: textOf(m.content, `${p}.content`) });
    else throw new TranslationError(`message role ${JSON.stringify(m.role)} is not supported`, `${p}.role`);
  });
  const model = opts.model ?? req.model;
  if (typeof model !== 'string') throw new TranslationError('model must be a string', 'model');
  const out: OpenAIChatRequest = { model, messages };
  if (req.max_tokens !== undefined) {
    if (typeof req.max_tokens !== 'number' || !Number.isInteger(req.max_tokens) || req.max_tokens < 1) {
      throw new TranslationError('max_tokens must be a positive integer', 'max_tokens');
    }
    out.max_completion_tokens = req.max_tokens;
  }
  if (typeof req.temperature === 'number') out.temperature = req.temperature;
  if (typeof req.top_p === 'number') out.top_p = req.top_p;
  if (Array.isArray(req.stop_sequences) && req.stop_sequences.length > 0) out.stop = req.stop_sequences as string[];
  if (req.stream === true) {
    out.stream = true;
    // The Anthropic client expects exact usage at the end of the stream: ask OpenAI for it.
    out.stream_options = { include_usage: true };
  }
  const tools = toolsOf(req.tools);
  if (tools && tools.length > 0) {
    out.tools = tools;
    const tc = toolChoiceOf(req.tool_choice);
    if (tc.choice !== undefined) out.tool_choice = tc.choice;
    if (tc.parallel === false) out.parallel_tool_calls = false;
  }
  const meta = req.metadata;
  if (isObj(meta) && typeof meta.user_id === 'string' && meta.user_id !== '') out.user = meta.user_id;
  return out;
}

/**
 * An OpenAI-dialect request without Anthropic `cache_control` markers (some OpenAI clients put
 * them on content parts and tools; OpenAI ignores unknown fields but Mistral refuses them).
 * Returns the request itself when it has none, else a copy.
 */
export function stripCacheControl(req: OpenAIChatRequest): OpenAIChatRequest {
  let changed = false;
  const strip = <T>(o: T): T => {
    if (!isObj(o) || !('cache_control' in o)) return o;
    changed = true;
    const { cache_control: _dropped, ...rest } = o;
    return rest as T;
  };
  const messages = req.messages.map((m) => {
    const c = (m as { content?: unknown }).content;
    if (!Array.isArray(c)) return m;
    const parts = c.map(strip);
    return parts.some((p, i) => p !== c[i]) ? ({ ...m, content: parts } as OpenAIMessage) : m;
  });
  const tools = req.tools?.map(strip);
  if (!changed) return req;
  const out: OpenAIChatRequest = { ...req, messages };
  if (tools) out.tools = tools;
  return out;
}
