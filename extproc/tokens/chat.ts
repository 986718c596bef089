/**
 * @module tokens/chat
 * What a chat request's input tokens are made of: the texts to count and the fixed overhead
 * the provider adds around them, for OpenAI chat-completions and Anthropic messages bodies
 * (Mistral speaks the OpenAI shape).
 *
 * Overheads follow OpenAI's published method (openai-cookbook, "How to count tokens with
 * tiktoken", the `num_tokens_from_messages` / `num_tokens_for_tools` functions):
 * - every message costs 3 tokens (`<|start|>{role}\n … <|end|>\n`), a `name` 1 more, and every
 *   reply is primed with 3 (`<|start|>assistant<|message|>`); the role string itself is counted;
 * - tool definitions: per function 7 (o200k) / 10 (cl100k) + the tokens of `name:description`,
 *   3 when it has properties, per property 3 + `key:type:description`, per enum -3 then 3 + the
 *   item per item, and 12 at the end. Nested schemas (which the cookbook does not cover) are
 *   counted as their JSON text, an overestimate.
 * Images are not read (no decoding on the hot path): a fixed 765 tokens each (a 1024×1024 image
 * at `detail: high`: 85 + 4 tiles × 170), 85 at `detail: low`.
 * Anthropic bodies use the same per-message overhead as an approximation, their tools are counted
 * as JSON text, plus the tool-use system prompt Anthropic documents (346 tokens with tools, Claude
 * 4 models, `tool_choice` auto/none).
 */

/** The pieces of a request that become input tokens. */
export interface ChatParts {
  /** Texts to run through the tokenizer. */
  readonly texts: string[];
  /** Tokens added by the format (per message, per name, reply priming, images, tool framing). */
  fixed: number;
}

/** Tool-counting constants by encoding (openai-cookbook `num_tokens_for_tools`). */
const TOOL_CONSTANTS = {
  o200k_base: { funcInit: 7, propInit: 3, propKey: 3, enumInit: -3, enumItem: 3, funcEnd: 12 },
  cl100k_base: { funcInit: 10, propInit: 3, propKey: 3, enumInit: -3, enumItem: 3, funcEnd: 12 },
} as const;

export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING = 3;
export const IMAGE_TOKENS_HIGH = 765;
export const IMAGE_TOKENS_LOW = 85;
export const ANTHROPIC_TOOL_SYSTEM_PROMPT = 346;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Adds a content value (string, or an array of typed parts) to `parts`. */
function addContent(content: unknown, parts: ChatParts): void {
  if (typeof content === 'string') {
    parts.texts.push(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (typeof part === 'string') {
      parts.texts.push(part);
      continue;
    }
    if (!isObj(part)) continue;
    const type = part.type;
    if (type === 'text' || type === 'input_text' || type === 'output_text') {
      const t = str(part.text);
      if (t) parts.texts.push(t);
    } else if (type === 'image_url' || type === 'image' || type === 'input_image') {
      const detail = isObj(part.image_url) ? part.image_url.detail : part.detail;
      parts.fixed += detail === 'low' ? IMAGE_TOKENS_LOW : IMAGE_TOKENS_HIGH;
    } else if (type === 'tool_use') {
      parts.texts.push(str(part.name) ?? '', JSON.stringify(part.input ?? {}));
    } else if (type === 'tool_result') {
      addContent(part.content, parts);
    } else if (type === 'thinking') {
      const t = str(part.thinking);
      if (t) parts.texts.push(t);
    } else {
      // Unknown part kinds: their JSON, so nothing the client sent goes uncounted.
      parts.texts.push(JSON.stringify(part));
    }
  }
}

/** Tool definitions counted by the cookbook method (OpenAI `tools` / legacy `functions`). */
function addOpenAiTools(tools: unknown[], encoding: 'o200k_base' | 'cl100k_base', parts: ChatParts): void {
  const c = TOOL_CONSTANTS[encoding];
  let any = false;
  for (const tool of tools) {
    if (!isObj(tool)) continue;
    const fn = isObj(tool.function) ? tool.function : tool;
    any = true;
    parts.fixed += c.funcInit;
    const desc = (str(fn.description) ?? '').replace(/\.$/, '');
    parts.texts.push(`${str(fn.name) ?? ''}:${desc}`);
    const params = isObj(fn.parameters) ? fn.parameters : undefined;
    const props = params && isObj(params.properties) ? params.properties : undefined;
    if (!props || Object.keys(props).length === 0) continue;
    parts.fixed += c.propInit;
    for (const [key, raw] of Object.entries(props)) {
      parts.fixed += c.propKey;
      const prop = isObj(raw) ? raw : {};
      if (Array.isArray(prop.enum)) {
        parts.fixed += c.enumInit;
        for (const item of prop.enum) {
          parts.fixed += c.enumItem;
          parts.texts.push(String(item));
        }
      }
      const type = Array.isArray(prop.type) ? prop.type.join('|') : (str(prop.type) ?? '');
      const pdesc = (str(prop.description) ?? '').replace(/\.$/, '');
      parts.texts.push(`${key}:${type}:${pdesc}`);
      if (isObj(prop.properties) || isObj(prop.items)) {
        parts.texts.push(JSON.stringify({ properties: prop.properties, items: prop.items }));
      }
    }
  }
  if (any) parts.fixed += c.funcEnd;
}

/**
 * The parts of a chat request body (OpenAI or Anthropic shape; detected by `system` being a
 * top-level field or `anthropic` being the family). Non-chat bodies (`input`, `prompt`) count
 * their text with no overhead.
 */
export function chatParts(body: Readonly<Json>, encoding: 'o200k_base' | 'cl100k_base', anthropic = false): ChatParts {
  const parts: ChatParts = { texts: [], fixed: 0 };
  const messages = Array.isArray(body.messages) ? body.messages : undefined;
  if (anthropic || body.system !== undefined) {
    if (body.system !== undefined) {
      parts.fixed += TOKENS_PER_MESSAGE;
      addContent(body.system, parts);
    }
  }
  if (messages) {
    for (const m of messages) {
      if (!isObj(m)) continue;
      parts.fixed += TOKENS_PER_MESSAGE;
      const role = str(m.role);
      if (role) parts.texts.push(role);
      const name = str(m.name);
      if (name) {
        parts.texts.push(name);
        parts.fixed += TOKENS_PER_NAME;
      }
      addContent(m.content, parts);
      if (Array.isArray(m.tool_calls)) {
        for (const call of m.tool_calls) {
          if (!isObj(call) || !isObj(call.function)) continue;
          parts.texts.push(str(call.function.name) ?? '', str(call.function.arguments) ?? '');
        }
      }
      const tcid = str(m.tool_call_id);
      if (tcid) parts.texts.push(tcid);
    }
    parts.fixed += REPLY_PRIMING;
  }
  const tools = Array.isArray(body.tools) ? body.tools : Array.isArray(body.functions) ? body.functions : undefined;
  if (tools && tools.length > 0) {
    if (anthropic) {
      parts.fixed += ANTHROPIC_TOOL_SYSTEM_PROMPT;
      for (const t of tools) parts.texts.push(JSON.stringify(t));
    } else {
      addOpenAiTools(tools, encoding, parts);
    }
  }
  // Embeddings / completions / responses-style bodies.
  if (!messages) {
    for (const key of ['input', 'prompt', 'instructions'] as const) {
      const v = body[key];
      if (typeof v === 'string') parts.texts.push(v);
      else if (Array.isArray(v)) {
        for (const item of v) {
          if (typeof item === 'string') parts.texts.push(item);
          else if (isObj(item)) addContent(item.content ?? [item], parts);
        }
      }
    }
  }
  return parts;
}

/** The output tokens a request allows (`max_completion_tokens`, `max_tokens`, `max_output_tokens`), if it says. */
export function requestedMaxOutput(body: Readonly<Json>): number | undefined {
  for (const key of ['max_completion_tokens', 'max_tokens', 'max_output_tokens'] as const) {
    const v = body[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.floor(v);
  }
  return undefined;
}
