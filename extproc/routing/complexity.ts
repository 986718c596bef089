/**
 * @module routing/complexity
 * What routing needs to know about a prompt, read in one pass over the body (OpenAI Chat
 * Completions or Anthropic Messages shape), and a deterministic complexity score.
 *
 * Complexity (0..1, three decimals) is a weighted sum of four capped signals:
 *
 * | signal | value | weight |
 * |---|---|---|
 * | length | estimated prompt tokens / 8,000, capped at 1 | 0.45 |
 * | turns | (messages − 1) / 10, capped at 1 | 0.20 |
 * | code | fenced code blocks (```) / 3, capped at 1 | 0.20 |
 * | tools | 0 without tools, else 0.5 + tools / 10, capped at 1 | 0.15 |
 *
 * So a one-line question scores ~0, a long multi-turn coding session with tools approaches 1.
 * Token estimates are characters / 4 (plus ~85 tokens per image): cheap and good enough to
 * compare against context windows with the margin operators give them; exact counting belongs to
 * the usage stage.
 */

/** What one pass over the request body found. */
export interface PromptSummary {
  /** Characters of text in system prompt, messages and tool definitions. */
  readonly chars: number;
  /** Messages (turns) in the conversation. */
  readonly turns: number;
  /** Fenced code blocks in the text. */
  readonly codeBlocks: number;
  /** Tool definitions offered. */
  readonly tools: number;
  /** Image parts. */
  readonly images: number;
  /** JSON output asked for (`response_format` json_object / json_schema). */
  readonly json: boolean;
  /** Estimated prompt tokens. */
  readonly promptTokens: number;
  /** Output tokens asked for (`max_tokens` / `max_completion_tokens`), 0 when unset. */
  readonly maxOutputTokens: number;
}

const TOKENS_PER_IMAGE = 85;

interface Acc {
  chars: number;
  fences: number;
  images: number;
}

function addText(acc: Acc, s: string): void {
  acc.chars += s.length;
  let i = s.indexOf('```');
  while (i >= 0) {
    acc.fences++;
    i = s.indexOf('```', i + 3);
  }
}

/** Text and images of a content value: a string or a list of parts (both dialects). */
function addContent(acc: Acc, content: unknown, depth = 0): void {
  if (typeof content === 'string') {
    addText(acc, content);
    return;
  }
  if (!Array.isArray(content) || depth > 2) return;
  for (const part of content) {
    if (part === null || typeof part !== 'object') continue;
    const p = part as Record<string, unknown>;
    const type = p['type'];
    if (type === 'image_url' || type === 'image' || type === 'input_image') acc.images++;
    if (typeof p['text'] === 'string') addText(acc, p['text']);
    // Anthropic tool_result carries nested content; tool_use carries input (JSON).
    if (p['content'] !== undefined) addContent(acc, p['content'], depth + 1);
    if (type === 'tool_use' && p['input'] !== undefined) acc.chars += JSON.stringify(p['input'])?.length ?? 0;
  }
}

function nonNegInt(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

/** Reads the prompt facts routing uses; any body shape is accepted (unknown fields are ignored). */
export function summarizePrompt(body: Readonly<Record<string, unknown>> | undefined): PromptSummary {
  const acc: Acc = { chars: 0, fences: 0, images: 0 };
  let turns = 0;
  let tools = 0;
  let json = false;
  if (body) {
    addContent(acc, body['system']);
    const messages = body['messages'];
    if (Array.isArray(messages)) {
      turns = messages.length;
      for (const m of messages) {
        if (m === null || typeof m !== 'object') continue;
        const msg = m as Record<string, unknown>;
        addContent(acc, msg['content']);
        // OpenAI assistant tool calls: arguments are prompt text on the next turn.
        const calls = msg['tool_calls'];
        if (Array.isArray(calls)) acc.chars += JSON.stringify(calls).length;
      }
    }
    const t = body['tools'];
    if (Array.isArray(t) && t.length > 0) {
      tools = t.length;
      acc.chars += JSON.stringify(t).length;
    }
    const rf = body['response_format'];
    if (rf !== null && typeof rf === 'object') {
      const type = (rf as Record<string, unknown>)['type'];
      json = type === 'json_object' || type === 'json_schema';
    }
  }
  const maxOutputTokens = nonNegInt(body?.['max_tokens']) || nonNegInt(body?.['max_completion_tokens']);
  return {
    chars: acc.chars,
    turns,
    codeBlocks: Math.ceil(acc.fences / 2),
    tools,
    images: acc.images,
    json,
    promptTokens: Math.ceil(acc.chars / 4) + acc.images * TOKENS_PER_IMAGE,
    maxOutputTokens,
  };
}

/** Deterministic complexity in [0, 1] (table in the module comment). */
export function complexityScore(s: PromptSummary): number {
  const length = Math.min(1, s.promptTokens / 8000);
  const turns = Math.min(1, Math.max(0, s.turns - 1) / 10);
  const code = Math.min(1, s.codeBlocks / 3);
  const tools = s.tools > 0 ? Math.min(1, 0.5 + s.tools / 10) : 0;
  return Math.round((0.45 * length + 0.2 * turns + 0.2 * code + 0.15 * tools) * 1000) / 1000;
}
