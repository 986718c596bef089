/**
 * @module providers/requestToAnthropic
 * An OpenAI Chat Completions request rewritten as an Anthropic Messages request, for an OpenAI
 * client served by Anthropic. What Anthropic cannot express is refused with a
 * {@link TranslationError} (the caller answers 400) rather than silently changed; fields with
 * no effect on the answer's content (`stream_options`, `logprobs`, `seed`, …) are dropped.
 */
import type {
  AnthropicCacheControl,
  AnthropicContentBlock,
  AnthropicImageBlock,
  AnthropicMessage,
  AnthropicRequest,
  AnthropicTextBlock,
  AnthropicTool,
  AnthropicToolChoice,
  AnthropicToolResultBlock,
  OpenAIChatRequest,
} from './types.js';
import { TranslationError } from './types.js';

export interface ToAnthropicOptions {
  /** Model id for the target (default: the request's own `model`). */
  model?: string;
  /** `max_tokens` when the client set none (Anthropic requires it). */
  defaultMaxTokens: number;
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DATA_URL = /^data:([^;,]+)((?:;[^;,]*)*);base64,/;

/** An OpenAI image URL (http(s) or a base64 data: URL) as an Anthropic image source. */
export function imageSourceOf(url: string, param: string): AnthropicImageBlock['source'] {
  if (url.startsWith('data:')) {
    const m = DATA_URL.exec(url);
    if (!m) throw new TranslationError('image data URLs must be base64 encoded (data:<media type>;base64,<data>)', param);
    return { type: 'base64', media_type: m[1]!, data: url.slice(m[0].length) };
  }
  if (url.startsWith('https://') || url.startsWith('http://')) return { type: 'url', url };
  throw new TranslationError('image_url.url must be an http(s) URL or a base64 data URL', param);
}

function cacheOf(part: Json): { cache_control?: AnthropicCacheControl } {
  const cc = part.cache_control;
  return isObj(cc) && cc.type === 'ephemeral' ? { cache_control: cc as unknown as AnthropicCacheControl } : {};
}

/** Content parts of a user (or system) message as Anthropic blocks. */
function partsToBlocks(content: unknown, param: string, allowImages: boolean): AnthropicContentBlock[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) throw new TranslationError('content must be a string or an array of content parts', param);
  const out: AnthropicContentBlock[] = [];
  content.forEach((part: unknown, i) => {
    const p = `${param}[${i}]`;
    if (!isObj(part)) throw new TranslationError('content part must be an object', p);
    switch (part.type) {
      case 'text':
        if (typeof part.text !== 'string') throw new TranslationError('text part needs a string `text`', p);
        // Anthropic refuses empty text blocks; an empty part carries nothing.
        if (part.text !== '') out.push({ type: 'text', text: part.text, ...cacheOf(part) });
        return;
      case 'refusal':
        if (typeof part.refusal === 'string' && part.refusal !== '') out.push({ type: 'text', text: part.refusal });
        return;
      case 'image_url': {
        if (!allowImages) throw new TranslationError('images are only allowed in user messages', p);
        const iu = part.image_url;
        const url = typeof iu === 'string' ? iu : isObj(iu) ? iu.url : undefined;
        if (typeof url !== 'string') throw new TranslationError('image_url part needs `image_url.url`', p);
        out.push({ type: 'image', source: imageSourceOf(url, `${p}.image_url.url`), ...cacheOf(part) });
        return;
      }
      case 'file': {
        const f = part.file;
        const data = isObj(f) ? f.file_data : undefined;
        if (!allowImages || typeof data !== 'string' || !data.startsWith('data:application/pdf;base64,')) {
          throw new TranslationError('only inline PDF files (file_data as a base64 data URL) can be sent to this model', p);
        }
        out.push({ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: data.slice('data:application/pdf;base64,'.length) } });
        return;
      }
      default:
        throw new TranslationError(`content part type ${JSON.stringify(part.type)} is not supported by this model`, p);
    }
  });
  return out;
}

function textOnly(content: unknown, param: string): AnthropicTextBlock[] {
  return partsToBlocks(content, param, false) as AnthropicTextBlock[];
}

function toolResultContent(content: unknown, param: string): AnthropicToolResultBlock['content'] {
  if (typeof content === 'string') return content;
  const blocks = partsToBlocks(content, param, true);
  return blocks as Array<AnthropicTextBlock | AnthropicImageBlock>;
}

function parseArguments(args: unknown, param: string): unknown {
  if (args === undefined || args === '') return {};
  if (typeof args !== 'string') throw new TranslationError('function.arguments must be a JSON string', param);
  try {
    return JSON.parse(args);
  } catch {
    throw new TranslationError('function.arguments is not valid JSON', param);
  }
}

function toolsOf(tools: unknown): AnthropicTool[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw new TranslationError('tools must be an array', 'tools');
  return tools.map((t: unknown, i) => {
    const p = `tools[${i}]`;
    if (!isObj(t) || t.type !== 'function' || !isObj(t.function) || typeof t.function.name !== 'string') {
      throw new TranslationError('only function tools with a name can be sent to this model', p);
    }
    const fn = t.function;
    const tool: AnthropicTool = {
      name: fn.name as string,
      input_schema: isObj(fn.parameters) ? fn.parameters : { type: 'object', properties: {} },
    };
    if (typeof fn.description === 'string') tool.description = fn.description;
    const cc = cacheOf(t);
    if (cc.cache_control) tool.cache_control = cc.cache_control;
    return tool;
  });
}

function toolChoiceOf(choice: unknown, parallel: unknown): AnthropicToolChoice | undefined {
  const noParallel = parallel === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined || choice === null) return parallel === false ? { type: 'auto', ...noParallel } : undefined;
  if (choice === 'none') return { type: 'none' };
  if (choice === 'auto') return { type: 'auto', ...noParallel };
  if (choice === 'required') return { type: 'any', ...noParallel };
  if (isObj(choice) && choice.type === 'function' && isObj(choice.function) && typeof choice.function.name === 'string') {
    return { type: 'tool', name: choice.function.name, ...noParallel };
  }
  throw new TranslationError('tool_choice must be "none", "auto", "required" or a function choice', 'tool_choice');
}

function stopOf(stop: unknown): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  if (typeof stop === 'string') return [stop];
  if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) return stop.length > 0 ? (stop as string[]) : undefined;
  throw new TranslationError('stop must be a string or an array of strings', 'stop');
}

/** Appends blocks to the last message when it has the same role (Anthropic wants alternating turns), else starts one. */
function pushTurn(out: AnthropicMessage[], role: 'user' | 'assistant', blocks: AnthropicContentBlock[]): void {
  if (blocks.length === 0) return;
  const last = out[out.length - 1];
  if (last && last.role === role && Array.isArray(last.content)) last.content.push(...blocks);
  else out.push({ role, content: blocks });
}

const PLAIN_ROLES = new Set(['system', 'developer', 'user', 'assistant']);

/**
 * True when `openaiToAnthropicRequest` certainly succeeds for `req`, judged without building
 * the translation: every turn a plain string of a known role, no tools, and the few fields it
 * may refuse in their accepted forms. A strict subset of its rules (kept beside them): false
 * only means "try the translation to know". Routing asks this for every request whose chain
 * has a step in the other dialect.
 */
export function plainOpenAIChat(req: Readonly<Record<string, unknown>>): boolean {
  const messages = req['messages'];
  if (!Array.isArray(messages)) return false;
  if (req['n'] !== undefined && req['n'] !== 1) return false;
  if (req['tools'] !== undefined || req['tool_choice'] !== undefined) return false;
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i];
    if (!isObj(m) || typeof m.content !== 'string' || !PLAIN_ROLES.has(m.role as string) || m.tool_calls !== undefined) return false;
  }
  const stop = req['stop'];
  if (!(stop === undefined || stop === null || typeof stop === 'string' || (Array.isArray(stop) && stop.every((x) => typeof x === 'string')))) return false;
  const max = req['max_completion_tokens'] ?? req['max_tokens'];
  return max === undefined || max === null || (typeof max === 'number' && Number.isInteger(max) && max >= 1);
}

/** Translates an OpenAI Chat Completions request body into an Anthropic Messages request body. */
export function openaiToAnthropicRequest(req: OpenAIChatRequest, opts: ToAnthropicOptions): AnthropicRequest {
  if (!Array.isArray(req.messages)) throw new TranslationError('messages must be an array', 'messages');
  if (typeof req.n === 'number' && req.n !== 1) throw new TranslationError('n other than 1 is not supported by this model', 'n');
  const system: AnthropicTextBlock[] = [];
  const messages: AnthropicMessage[] = [];
  req.messages.forEach((m: unknown, i) => {
    const p = `messages[${i}]`;
    if (!isObj(m)) throw new TranslationError('message must be an object', p);
    switch (m.role) {
      case 'system':
      case 'developer':
        // Anthropic has one system prompt, outside the turns: every system message goes there, in order.
        system.push(...textOnly(m.content, `${p}.content`));
        return;
      case 'user':
        // A single string stays a string when it starts a turn: the exact shape Anthropic clients send.
        if (typeof m.content === 'string' && messages[messages.length - 1]?.role !== 'user') {
          if (m.content !== '') messages.push({ role: 'user', content: m.content });
          return;
        }
        pushTurn(messages, 'user', partsToBlocks(m.content, `${p}.content`, true));
        return;
      case 'assistant': {
        const blocks: AnthropicContentBlock[] = [];
        if (m.content !== undefined && m.content !== null) blocks.push(...textOnly(m.content, `${p}.content`));
        if (typeof m.refusal === 'string' && m.refusal !== '' && blocks.length === 0) blocks.push({ type: 'text', text: m.refusal });
        if (Array.isArray(m.tool_calls)) {
          m.tool_calls.forEach((tc: unknown, j) => {
            const tp = `${p}.tool_calls[${j}]`;
            if (!isObj(tc) || typeof tc.id !== 'string' || !isObj(tc.function) || typeof tc.function.name !== 'string') {
              throw new TranslationError('tool call needs an id and a function name', tp);
            }
            blocks.push({ type: 'tool_use', id: tc.id, name: tc.function.name, input: parseArguments(tc.function.arguments, `${tp}.function.arguments`) });
          });
        }
        pushTurn(messages, 'assistant', blocks);
        return;
      }
      case 'tool': {
        if (typeof m.tool_call_id !== 'string') throw new TranslationError('tool message needs tool_call_id', `${p}.tool_call_id`);
        const block: AnthropicToolResultBlock = { type: 'tool_result', tool_use_id: m.tool_call_id, content: toolResultContent(m.content, `${p}.content`) };
        // Tool results answer the previous assistant turn: they open the next user turn, before any text.
        pushTurn(messages, 'user', [block]);
        return;
      }
      default:
        throw new TranslationError(`message role ${JSON.stringify(m.role)} is not supported by this model`, `${p}.role`);
    }
  });

  const out: AnthropicRequest = {
    model: opts.model ?? req.model,
    messages,
    max_tokens: pickMaxTokens(req, opts.defaultMaxTokens),
  };
  if (system.length > 0) {
    const plain = system.length === 1 && system[0]!.cache_control === undefined;
    out.system = plain ? system[0]!.text : system;
  }
  if (typeof req.temperature === 'number') out.temperature = Math.min(1, Math.max(0, req.temperature)); // OpenAI allows 0..2, Anthropic 0..1
  if (typeof req.top_p === 'number') out.top_p = req.top_p;
  const stop = stopOf(req.stop);
  if (stop) out.stop_sequences = stop;
  if (req.stream === true) out.stream = true;
  const tools = toolsOf(req.tools);
  if (tools && tools.length > 0) {
    out.tools = tools;
    const choice = toolChoiceOf(req.tool_choice, req.parallel_tool_calls);
    if (choice) out.tool_choice = choice;
  } else if (req.tool_choice !== undefined && req.tool_choice !== 'none' && req.tool_choice !== 'auto') {
    throw new TranslationError('tool_choice requires tools', 'tool_choice');
  }
  if (typeof req.user === 'string' && req.user !== '') out.metadata = { user_id: req.user };
  return out;
}

function pickMaxTokens(req: OpenAIChatRequest, dflt: number): number {
  const v = req.max_completion_tokens ?? req.max_tokens;
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TranslationError('max_tokens must be a positive integer', 'max_tokens');
  return v;
}
