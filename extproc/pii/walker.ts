/**
 * @module pii/walker
 * Rewrites every text-bearing part of an OpenAI Chat Completions or Anthropic Messages request.
 *
 * Copy-on-write: the given body is never modified (it is the exchange's shared parse). The
 * result is a new body in which every object on the path to a text (body, messages, content
 * parts, tool calls) is a shallow copy and everything else (images, tool definitions, …) is
 * shared — cheap even for a large body, since strings are not copied.
 *
 * Text-bearing parts: string content and `text` parts, system prompts (string or blocks), tool
 * results (OpenAI `tool` messages; Anthropic `tool_result` content, string or blocks),
 * tool-call arguments (OpenAI `function.arguments`, JSON inside a string, parsed, its string
 * values rewritten and re-serialised only if something changed; Anthropic `tool_use.input`, its
 * string values rewritten), refusals, Anthropic text documents, and OpenAI message `name`
 * (rewritten with bare placeholders, `EMAIL_1`, to fit its `[a-zA-Z0-9_-]` alphabet).
 * Image, audio and file parts are left alone and counted in `media`. Anthropic `thinking` and
 * `redacted_thinking` blocks are signed by the provider and would be refused if changed: they
 * are left alone and counted in `skipped`.
 *
 * Two passes: every text is first collected and reserved (so a placeholder-shaped literal
 * anywhere in the request is never issued), then rewritten.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { EntityType } from './entities.js';
import { windowChars, type PiiSession } from './session.js';

export type Dialect = 'openai' | 'anthropic';

export interface WalkResult {
  /** The rewritten body (a new object; the input is untouched). */
  readonly body: Record<string, unknown>;
  /** Whether any text changed (if not, `body` still is a copy but equal to the input). */
  readonly changed: boolean;
  /** Entities replaced in this walk, per type. */
  readonly counts: ReadonlyMap<EntityType, number>;
  /** Types with action `block` that were found: refuse the request, naming these. */
  readonly blocked: readonly EntityType[];
  /** Text fields scanned. */
  readonly texts: number;
  /** Image, audio and file parts left alone. */
  readonly media: number;
  /** Signed parts left alone (Anthropic thinking blocks). */
  readonly skipped: number;
}

type Holder = Record<string, unknown> | unknown[];

/** A JSON document inside a string (tool-call arguments): re-serialised if a value changed. */
interface JsonDoc {
  readonly holder: Holder;
  readonly key: string | number;
  /** `{ v: parsed }`, so that a bare string document is a slot too. */
  readonly root: { v: unknown };
  changed: boolean;
}

interface Slot {
  readonly holder: Holder;
  readonly key: string | number;
  readonly text: string;
  readonly bare: boolean;
  readonly doc: JsonDoc | undefined;
}

class Collector {
  readonly slots: Slot[] = [];
  readonly docs: JsonDoc[] = [];
  media = 0;
  skipped = 0;

  text(holder: Holder, key: string | number, bare = false, doc?: JsonDoc): void {
    const v = (holder as Record<string | number, unknown>)[key];
    if (typeof v === 'string' && v.length > 0) this.slots.push({ holder, key, text: v, bare, doc });
  }

  /** A string holding JSON: its string values become slots; not JSON → a plain text slot. */
  json(holder: Holder, key: string | number): void {
    const v = (holder as Record<string | number, unknown>)[key];
    if (typeof v !== 'string' || v.length === 0) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      this.text(holder, key);
      return;
    }
    const doc: JsonDoc = { holder, key, root: { v: parsed }, changed: false };
    this.docs.push(doc);
    this.strings(doc.root, 'v', doc);
  }

  /** Every string value under `holder[key]` (fresh from JSON.parse or copied here): a slot. */
  strings(holder: Holder, key: string | number, doc?: JsonDoc): void {
    const h = holder as Record<string | number, unknown>;
    const v = h[key];
    if (typeof v === 'string') {
      this.text(holder, key, false, doc);
    } else if (Array.isArray(v)) {
      const copy = doc === undefined ? v.slice() : v;
      h[key] = copy;
      for (let i = 0; i < copy.length; i++) this.strings(copy, i, doc);
    } else if (isObject(v)) {
      const copy = doc === undefined ? { ...v } : v;
      h[key] = copy;
      for (const k of Object.keys(copy)) this.strings(copy, k, doc);
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Shallow-copies `holder[key]` if it is an object and returns the copy. */
function own(holder: Holder, key: string | number): Record<string, unknown> | undefined {
  const h = holder as Record<string | number, unknown>;
  const v = h[key];
  if (!isObject(v)) return undefined;
  const copy = { ...v };
  h[key] = copy;
  return copy;
}

/** Shallow-copies `holder[key]` if it is an array and returns the copy. */
function ownArray(holder: Holder, key: string | number): unknown[] | undefined {
  const h = holder as Record<string | number, unknown>;
  const v = h[key];
  if (!Array.isArray(v)) return undefined;
  const copy = v.slice();
  h[key] = copy;
  return copy;
}

const mediaTypes = new Set(['image_url', 'input_audio', 'file', 'image', 'audio', 'input_image', 'input_file']);

function collectOpenAI(body: Record<string, unknown>, c: Collector): void {
  const messages = ownArray(body, 'messages');
  if (messages === undefined) return;
  for (let i = 0; i < messages.length; i++) {
    const m = own(messages, i);
    if (m === undefined) continue;
    if (typeof m['content'] === 'string') c.text(m, 'content');
    else {
      const parts = ownArray(m, 'content');
      if (parts !== undefined) {
        for (let j = 0; j < parts.length; j++) {
          const type = isObject(parts[j]) ? (parts[j] as Record<string, unknown>)['type'] : undefined;
          if (type === 'text') c.text(own(parts, j) as Record<string, unknown>, 'text');
          else if (type === 'refusal') c.text(own(parts, j) as Record<string, unknown>, 'refusal');
          else if (typeof type === 'string' && mediaTypes.has(type)) c.media++;
        }
      }
    }
    c.text(m, 'refusal');
    c.text(m, 'name', true);
    const calls = ownArray(m, 'tool_calls');
    if (calls !== undefined) {
      for (let j = 0; j < calls.length; j++) {
        const call = own(calls, j);
        const fn = call === undefined ? undefined : own(call, 'function');
        if (fn !== undefined) c.json(fn, 'arguments');
      }
    }
    const legacy = own(m, 'function_call');
    if (legacy !== undefined) c.json(legacy, 'arguments');
  }
}

function collectAnthropicBlocks(holder: Holder, key: string | number, c: Collector): void {
  const h = holder as Record<string | number, unknown>;
  if (typeof h[key] === 'string') {
    c.text(holder, key);
    return;
  }
  const blocks = ownArray(holder, key);
  if (blocks === undefined) return;
  for (let i = 0; i < blocks.length; i++) {
    const raw = blocks[i];
    if (!isObject(raw)) continue;
    switch (raw['type']) {
      case 'text':
        c.text(own(blocks, i) as Record<string, unknown>, 'text');
        break;
      case 'tool_use':
      case 'server_tool_use': {
        const b = own(blocks, i) as Record<string, unknown>;
        c.strings(b, 'input');
        break;
      }
      case 'tool_result': {
        const b = own(blocks, i) as Record<string, unknown>;
        collectAnthropicBlocks(b, 'content', c);
        break;
      }
      case 'document': {
        const src = raw['source'];
        if (isObject(src) && src['type'] === 'text') {
          const b = own(blocks, i) as Record<string, unknown>;
          c.text(own(b, 'source') as Record<string, unknown>, 'data');
        } else if (isObject(src) && src['type'] === 'content') {
          const b = own(blocks, i) as Record<string, unknown>;
          collectAnthropicBlocks(own(b, 'source') as Record<string, unknown>, 'content', c);
        } else {
          c.media++;
        }
        break;
      }
      case 'image':
        c.media++;
        break;
      case 'thinking':
      case 'redacted_thinking':
        c.skipped++;
        break;
      default:
        break;
    }
  }
}

function collectAnthropic(body: Record<string, unknown>, c: Collector): void {
  collectAnthropicBlocks(body, 'system', c);
  const messages = ownArray(body, 'messages');
  if (messages === undefined) return;
  for (let i = 0; i < messages.length; i++) {
    const m = own(messages, i);
    if (m !== undefined) collectAnthropicBlocks(m, 'content', c);
  }
}

function collect(body: Record<string, unknown>, dialect: Dialect, session: PiiSession): { copy: Record<string, unknown>; c: Collector } {
  const copy = { ...body };
  const c = new Collector();
  if (dialect === 'openai') collectOpenAI(copy, c);
  else collectAnthropic(copy, c);
  for (const s of c.slots) session.reserve(s.text);
  return { copy, c };
}

function store(slot: Slot, out: string): boolean {
  if (out === slot.text) return false;
  (slot.holder as Record<string | number, unknown>)[slot.key] = out;
  if (slot.doc !== undefined) slot.doc.changed = true;
  return true;
}

function finish(
  copy: Record<string, unknown>,
  c: Collector,
  session: PiiSession,
  before: ReadonlyMap<EntityType, number>,
  changed: boolean,
): WalkResult {
  for (const d of c.docs) {
    if (d.changed) (d.holder as Record<string | number, unknown>)[d.key] = JSON.stringify(d.root.v);
  }
  const counts = new Map<EntityType, number>();
  for (const [t, n] of session.counts) {
    const delta = n - (before.get(t) ?? 0);
    if (delta > 0) counts.set(t, delta);
  }
  return {
    body: copy,
    changed,
    counts,
    blocked: [...session.blocked],
    texts: c.slots.length,
    media: c.media,
    skipped: c.skipped,
  };
}

/** Rewrites a request synchronously (fine up to a few hundred KiB; see `rewriteRequestAsync`). */
export function rewriteRequest(body: Record<string, unknown>, dialect: Dialect, session: PiiSession): WalkResult {
  const before = new Map(session.counts);
  const { copy, c } = collect(body, dialect, session);
  let changed = false;
  for (const s of c.slots) if (store(s, session.rewrite(s.text, { bare: s.bare }))) changed = true;
  return finish(copy, c, session, before, changed);
}

/**
 * Rewrites a request, yielding to the event loop after every `windowChars` (128 Ki) characters of text (and between the
 * windows of one large text), so a multi-megabyte prompt does not hold up other streams.
 */
export async function rewriteRequestAsync(
  body: Record<string, unknown>,
  dialect: Dialect,
  session: PiiSession,
): Promise<WalkResult> {
  const before = new Map(session.counts);
  const { copy, c } = collect(body, dialect, session);
  await yieldToLoop();
  let changed = false;
  let sinceYield = 0;
  for (const s of c.slots) {
    if (s.text.length > windowChars) {
      if (store(s, await session.rewriteAsync(s.text, { bare: s.bare }))) changed = true;
      sinceYield = 0;
      continue;
    }
    if (store(s, session.rewrite(s.text, { bare: s.bare }))) changed = true;
    sinceYield += s.text.length;
    if (sinceYield >= windowChars) {
      sinceYield = 0;
      await yieldToLoop();
    }
  }
  return finish(copy, c, session, before, changed);
}
