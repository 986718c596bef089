// Deterministic text helpers shared by the fake providers: a tiny tokenizer, the default reply,
// SSE framing, and ids. Everything here is pure so tests can compute the numbers the fakes report.
import { createHash } from 'node:crypto';

const TOKEN_RE = /[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu;

/**
 * Token count used by every fake: one token per run of letters/digits and one per other
 * non-space character. "Hello, world!" is 4 tokens. Not a real BPE, but stable and documented.
 */
export function countTokens(text: string): number {
  let n = 0;
  for (const _ of text.matchAll(TOKEN_RE)) n++;
  return n;
}

/** The prefix of `text` holding its first `max` tokens (and no trailing space). */
export function truncateToTokens(text: string, max: number): string {
  if (max <= 0) return '';
  let n = 0;
  for (const m of text.matchAll(TOKEN_RE)) {
    n++;
    if (n === max) return text.slice(0, (m.index ?? 0) + m[0].length);
  }
  return text;
}

/**
 * Prompt tokens for a chat request: the tokens of every message's text, plus 4 per message
 * (role and framing) plus 3 for the reply primer. `messages` lists one text per message; the
 * Anthropic fake counts a `system` prompt as one more message.
 */
export function promptTokenCount(messages: readonly string[]): number {
  let n = 3;
  for (const m of messages) n += 4 + countTokens(m);
  return n;
}

/**
 * Split a reply into stream deltas: one word each, with its leading whitespace. Joining the
 * deltas gives back the text exactly.
 */
export function splitDeltas(text: string): string[] {
  const parts: string[] = text.match(/\s*\S+/g) ?? [];
  const used = parts.reduce((a, p) => a + p.length, 0);
  if (used < text.length) {
    const rest = text.slice(used);
    if (parts.length > 0) parts[parts.length - 1] += rest;
    else parts.push(rest);
  }
  return parts;
}

/** The text of an OpenAI/Mistral/Anthropic message `content` (string, or array of text parts). */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        if (typeof part === 'string') return part;
        if (part && typeof part === 'object') {
          const p = part as Record<string, unknown>;
          if (typeof p.text === 'string') return p.text;
          // Anthropic tool_result blocks nest their content.
          if ('content' in p) return contentText(p.content);
        }
        return '';
      })
      .filter((s) => s.length > 0)
      .join('\n');
  }
  return '';
}

/** The default deterministic reply: derived from the last user message. */
export function defaultReplyText(kind: string, lastUserText: string): string {
  const said = lastUserText.trim();
  return said.length > 0
    ? `This is a fake ${kind} reply to: ${said}`
    : `This is a fake ${kind} reply.`;
}

/** One SSE frame carrying `data` (JSON-encoded unless already a string). */
export function sseData(data: unknown): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return `data: ${payload}\n\n`;
}

/** One SSE frame with an `event:` line, as Anthropic sends them. */
export function sseEvent(event: string, data: unknown): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return `event: ${event}\ndata: ${payload}\n\n`;
}

export interface SseFrame {
  event?: string;
  data: string;
  /** `data` parsed as JSON, or undefined when it is not JSON (e.g. `[DONE]`). */
  json?: unknown;
}

/** Parse an SSE byte stream (as text) into frames. Lenient: handles \n and \r\n. */
export function parseSSE(text: string): SseFrame[] {
  const frames: SseFrame[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === '') continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i === -1 ? line : line.slice(0, i);
      let value = i === -1 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0 && event === undefined) continue;
    const frame: SseFrame = { data: data.join('\n') };
    if (event !== undefined) frame.event = event;
    try {
      frame.json = JSON.parse(frame.data);
    } catch {
      // not JSON
    }
    frames.push(frame);
  }
  return frames;
}

/** Deterministic id material: hex digest of `seed`. */
export function hexId(seed: string, length: number): string {
  let out = '';
  let i = 0;
  while (out.length < length) out += createHash('sha256').update(`${seed}#${i++}`).digest('hex');
  return out.slice(0, length);
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Deterministic alphanumeric id material (OpenAI / Anthropic style ids). */
export function alnumId(seed: string, length: number): string {
  const hex = hexId(seed, length * 2);
  let out = '';
  for (let i = 0; i < length; i++) out += ALNUM[parseInt(hex.slice(i * 2, i * 2 + 2), 16) % ALNUM.length];
  return out;
}
