import { describe, expect, it } from 'vitest';
import { canonicalJson, deriveCacheKeys, exactHash, scopeKey, type ScopeParts } from '../../extproc/cache/index.js';
import { mulberry32 } from '../helpers/prng.js';

const base: ScopeParts = { caller: 'a', route: 'r', model: 'm', dialect: 'openai', params: {}, history: [] };

describe('scope key', () => {
  it('cannot be made to collide by moving a separator between fields', () => {
    expect(scopeKey({ ...base, caller: 'a|b', route: 'c' })).not.toBe(scopeKey({ ...base, caller: 'a', route: 'b|c' }));
    expect(scopeKey({ ...base, caller: 'a","b', route: 'c' })).not.toBe(scopeKey({ ...base, caller: 'a', route: 'b","c' }));
    expect(scopeKey({ ...base, caller: 'a\u0000', route: 'b' })).not.toBe(scopeKey({ ...base, caller: 'a', route: '\u0000b' }));
  });

  it('canonical JSON is JSON.parse-able, sorts keys, drops undefined members like JSON.stringify (random values)', () => {
    const rnd = mulberry32(7);
    const keys = ['a', 'b', 'é', 'z1', '"q"', '\\', 'content', 'role', '10', '2'];
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.3) return [null, true, 0, -1.5, 'x', 'a"b\\c\n', '🙂', undefined][Math.floor(rnd() * 8)];
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 5); i > 0; i--) o[keys[Math.floor(rnd() * keys.length)]!] = value(depth + 1);
      return o;
    };
    const sorted = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sorted) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v;
    for (let i = 0; i < 500; i++) {
      const v = value(0);
      const c = canonicalJson(v);
      expect(JSON.parse(c)).toEqual(JSON.parse(JSON.stringify(v) ?? 'null'));
      // Same text as JSON.stringify of a key-sorted copy, where key order is not the engine's integer-first order.
      if (!JSON.stringify(v)?.match(/"\d+":/)) expect(c).toBe(JSON.stringify(sorted(v)) ?? 'null');
    }
  });

  it('is independent of key order and changes with any field', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    expect(scopeKey({ ...base, params: { temperature: 0, top_p: 1 } })).toBe(scopeKey({ ...base, params: { top_p: 1, temperature: 0 } }));
    const k = scopeKey(base);
    for (const p of [{ caller: 'b' }, { route: 'x' }, { model: 'n' }, { dialect: 'anthropic' as const }, { params: { seed: 1 } }, { history: [{ role: 'system', content: 'x' }] }]) {
      expect(scopeKey({ ...base, ...p })).not.toBe(k);
    }
  });
});

describe('deriveCacheKeys', () => {
  const ctx = { caller: 'spiffe://t/a', route: 'chat', model: 'gpt-4o' };
  const openai = (over: Record<string, unknown> = {}, messages?: unknown[]): unknown => ({
    model: 'gpt-4o',
    messages: messages ?? [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is 2+2?' },
    ],
    ...over,
  });

  it('gives the newest user text, and an exact hash that changes with it', () => {
    const a = deriveCacheKeys(openai(), 'openai', ctx);
    expect(a).toMatchObject({ cacheable: true, newestUserText: 'What is 2+2?' });
    const b = deriveCacheKeys(openai({}, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 2+3?' }]), 'openai', ctx);
    if (!a.cacheable || !b.cacheable) throw new Error('cacheable');
    expect(b.scopeKey).toBe(a.scopeKey);
    expect(b.exactHash).not.toBe(a.exactHash);
    // Made when first read, over the scope and the newest turn as sent.
    expect(a.exactHash).toBe(exactHash(a.scopeKey, 'What is 2+2?'));
  });

  it('puts the system prompt, earlier turns, tools and answer-changing parameters in the scope', () => {
    const k = (r: unknown): string => {
      const d = deriveCacheKeys(r, 'openai', ctx);
      if (!d.cacheable) throw new Error(d.reason);
      return d.scopeKey;
    };
    const base0 = k(openai());
    expect(k(openai({ stream: true, user: 'u1', stream_options: { include_usage: true } }))).toBe(base0);
    for (const p of [{ temperature: 0.2 }, { top_p: 0.5 }, { max_tokens: 10 }, { response_format: { type: 'json_object' } }, { seed: 7 }, { n: 2 }, { stop: ['x'] }, { tools: [{ type: 'function', function: { name: 'f' } }] }, { tool_choice: 'none' }, { some_future_param: 1 }]) {
      expect(k(openai(p))).not.toBe(base0);
    }
    expect(k(openai({}, [{ role: 'system', content: 'Be verbose.' }, { role: 'user', content: 'What is 2+2?' }]))).not.toBe(base0);
    expect(
      k(openai({}, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'What is 2+2?' }])),
    ).not.toBe(base0);
  });

  it('reads Anthropic requests: system in the scope, text blocks as the newest turn', () => {
    const req = { model: 'claude', max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: 'there' }] }] };
    const a = deriveCacheKeys(req, 'anthropic', ctx);
    expect(a).toMatchObject({ cacheable: true, newestUserText: 'Hi\nthere' });
    const b = deriveCacheKeys({ ...req, system: 'Be long.' }, 'anthropic', ctx);
    if (!a.cacheable || !b.cacheable) throw new Error('cacheable');
    expect(b.scopeKey).not.toBe(a.scopeKey);
  });

  it('refuses what it cannot compare as text', () => {
    expect(deriveCacheKeys({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'openai', ctx)).toMatchObject({ cacheable: false, reason: 'last-turn-not-text' });
    expect(deriveCacheKeys({ messages: [{ role: 'user', content: 'x' }, { role: 'tool', content: 'y' }] }, 'openai', ctx)).toMatchObject({ cacheable: false, reason: 'last-turn-not-user' });
    expect(deriveCacheKeys({ messages: [] }, 'openai', ctx)).toMatchObject({ cacheable: false });
    expect(deriveCacheKeys('x', 'openai', ctx)).toMatchObject({ cacheable: false });
  });
});
