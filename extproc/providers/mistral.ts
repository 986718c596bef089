/**
 * @module providers/mistral
 * Mistral speaks the OpenAI Chat Completions dialect with its own quirks; this adapts an OpenAI
 * request (from an OpenAI client, or translated from Anthropic) for Mistral's API:
 * - only the fields Mistral accepts are sent (it answers 422 to unknown ones), `seed` becomes
 *   `random_seed`, `max_completion_tokens` becomes `max_tokens`, `stream_options` goes (Mistral
 *   sends usage in its last chunk unasked);
 * - `tool_choice: "required"` becomes `"any"`;
 * - `developer` messages become `system` messages; `cache_control` markers are dropped;
 * - tool call ids become 9 characters of [a-zA-Z0-9], as Mistral requires, derived from the
 *   original id by a hash so a call and its result keep matching across turns and requests.
 * The answer needs no translation back: it is OpenAI-shaped.
 */
import { createHash } from 'node:crypto';
import type { OpenAIChatRequest, OpenAIMessage } from './types.js';
import { stripCacheControl } from './requestToOpenAI.js';

const ALLOWED = new Set([
  'model',
  'messages',
  'temperature',
  'top_p',
  'max_tokens',
  'stream',
  'stop',
  'random_seed',
  'response_format',
  'tools',
  'tool_choice',
  'presence_penalty',
  'frequency_penalty',
  'n',
  'prediction',
  'parallel_tool_calls',
  'safe_prompt',
]);

const MISTRAL_ID = /^[a-zA-Z0-9]{9}$/;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A tool call id in Mistral's form: kept when already valid, else 9 base-62 characters of its SHA-256. */
export function mistralToolCallId(id: string): string {
  if (MISTRAL_ID.test(id)) return id;
  const h = createHash('sha256').update(id).digest();
  let s = '';
  for (let i = 0; i < 9; i++) s += ALPHABET[h[i]! % 62];
  return s;
}

/** Returns a copy of `req` adapted for Mistral (the input is not modified). */
export function adaptForMistral(original: OpenAIChatRequest): OpenAIChatRequest {
  const req = stripCacheControl(original);
  const out: OpenAIChatRequest = { model: req.model, messages: [] };
  for (const [k, v] of Object.entries(req)) {
    if (ALLOWED.has(k) && v !== undefined) out[k] = v;
  }
  const maxTokens = req.max_completion_tokens ?? req.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null) out.max_tokens = maxTokens;
  if (typeof req.seed === 'number') out.random_seed = req.seed;
  if (req.tool_choice === 'required') out.tool_choice = 'any' as unknown as OpenAIChatRequest['tool_choice'];
  out.messages = req.messages.map((m): OpenAIMessage => {
    if (m.role === 'developer') return { ...m, role: 'system' };
    if (m.role === 'tool') return { ...m, tool_call_id: mistralToolCallId(m.tool_call_id) };
    if (m.role === 'assistant' && m.tool_calls && m.tool_calls.length > 0) {
      return { ...m, tool_calls: m.tool_calls.map((tc) => ({ ...tc, id: mistralToolCallId(tc.id) })) };
    }
    return m;
  });
  return out;
}
