/**
 * @module cache/scope
 * What may match what. A cache entry is keyed by a scope (everything that changes the answer
 * except the newest user turn) and an exact hash (the scope plus that turn, verbatim). Both are
 * SHA-256 over a canonical JSON encoding: JSON quotes and escapes every string and sorts every
 * object's keys, so no choice of caller id or route name can make two different scopes encode
 * to the same bytes ("a|b" + "c" and "a" + "b|c" are two different arrays).
 */
import { sha256Hex } from '../digest.js';

export type Dialect = 'openai' | 'anthropic';

export interface ScopeParts {
  caller: string;
  route: string;
  /** The model that will serve (after routing). */
  model: string;
  dialect: Dialect;
  /** System prompt, tool definitions and every answer-changing parameter, as sent. */
  params: Record<string, unknown>;
  /** Earlier turns, including system / developer messages, as sent. */
  history: readonly unknown[];
}

/** Keys JSON writes as they are, between quotes (nothing to escape). */
const PLAIN_KEY = /^[A-Za-z0-9_.-]*$/;

/**
 * JSON with object keys sorted at every depth; `undefined` members dropped as JSON does. Built
 * in one string (no per-node arrays): it runs over the whole conversation on every request.
 * Objects here have a handful of keys: an insertion sort (code-unit order, as `sort()`) beats
 * the builtin's setup, and a plain key needs no JSON.stringify.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  const n = keys.length;
  for (let i = 1; i < n; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  let out = '{';
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    const v = obj[k];
    if (v === undefined) continue;
    out += (out.length === 1 ? '' : ',') + (PLAIN_KEY.test(k) ? `"${k}"` : JSON.stringify(k)) + ':' + canonicalJson(v);
  }
  return out + '}';
}

export function scopeKey(parts: ScopeParts): string {
  return sha256Hex(
    canonicalJson(['scope-v1', parts.caller, parts.route, parts.model, parts.dialect, parts.params, parts.history]),
  );
}

export function exactHash(scope: string, newestUserTurn: unknown): string {
  return sha256Hex(canonicalJson(['exact-v1', scope, newestUserTurn]));
}

/**
 * Request fields that do not change the answer, left out of the scope. Anything else, including
 * fields this list does not know yet, partitions the cache: an unknown parameter costs hit
 * rate, never correctness.
 */
const NEUTRAL_FIELDS: Record<Dialect, ReadonlySet<string>> = {
  openai: new Set(['messages', 'stream', 'stream_options', 'user', 'metadata', 'store', 'service_tier', 'safety_identifier', 'prompt_cache_key']),
  anthropic: new Set(['messages', 'stream', 'metadata', 'service_tier']),
};

export interface CacheKeys {
  scopeKey: string;
  exactHash: string;
  /** Text of the newest user turn: what is embedded and verified. */
  newestUserText: string;
}

export type DeriveResult = ({ cacheable: true } & CacheKeys) | { cacheable: false; reason: string };

/** Text of a message's content if it is only text (string or text parts); else undefined. */
function textOnly(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content) || content.length === 0) return undefined;
  const texts: string[] = [];
  for (const part of content) {
    const p = part as { type?: unknown; text?: unknown } | null;
    if (!p || p.type !== 'text' || typeof p.text !== 'string') return undefined;
    texts.push(p.text);
  }
  return texts.join('\n');
}

/**
 * Keys of a parsed chat request (OpenAI `/v1/chat/completions` or Anthropic `/v1/messages`).
 * Not cacheable when the newest message is not a user turn of plain text (a tool result, an
 * image, an assistant prefill): those are answered by the provider.
 */
export function deriveCacheKeys(
  request: unknown,
  dialect: Dialect,
  ctx: { caller: string; route: string; model: string },
): DeriveResult {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) return { cacheable: false, reason: 'not-an-object' };
  const body = request as Record<string, unknown>;
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return { cacheable: false, reason: 'no-messages' };
  const last = messages[messages.length - 1] as { role?: unknown; content?: unknown } | null;
  if (!last || last.role !== 'user') return { cacheable: false, reason: 'last-turn-not-user' };
  const text = textOnly(last.content);
  if (text === undefined) return { cacheable: false, reason: 'last-turn-not-text' };
  const neutral = NEUTRAL_FIELDS[dialect];
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!neutral.has(k)) params[k] = v;
  const scope = scopeKey({ ...ctx, dialect, params, history: messages.slice(0, -1) });
  return new DerivedKeys(scope, last.content, text);
}

/**
 * Keys of a cacheable request. The exact hash is made when first read: a lookup in a scope known
 * empty never reads it, and an answer that is not stored never needs it (a third of the keys'
 * cost on a request, over the newest turn, often the longest message).
 */
class DerivedKeys implements CacheKeys {
  readonly cacheable = true;
  private exact: string | undefined = undefined;

  constructor(
    readonly scopeKey: string,
    private readonly newestUserTurn: unknown,
    readonly newestUserText: string,
  ) {}

  get exactHash(): string {
    return (this.exact ??= exactHash(this.scopeKey, this.newestUserTurn));
  }
}
