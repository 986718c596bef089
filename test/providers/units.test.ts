import { describe, it, expect, vi } from 'vitest';
import { fixture } from './cases.js';
import { SseParser, type SseEvent } from '../../extproc/providers/sse.js';
import { PlainDeltaShape, readTextOnly, UsageExtractor } from '../../extproc/providers/usage.js';
import { dialectOfPath } from '../../extproc/providers/paths.js';
import { translateError, streamErrorEvent, readError } from '../../extproc/providers/errors.js';
import { openaiToAnthropicRequest, plainOpenAIChat } from '../../extproc/providers/requestToAnthropic.js';
import { anthropicToOpenAIRequest } from '../../extproc/providers/requestToOpenAI.js';
import { adaptForMistral, mistralToolCallId } from '../../extproc/providers/mistral.js';
import { OpenAIToAnthropicStream } from '../../extproc/providers/streamToAnthropic.js';
import { AnthropicToOpenAIStream } from '../../extproc/providers/streamToOpenAI.js';
import { TranslationError, type OpenAIChatRequest } from '../../extproc/providers/types.js';

function events(name: string): SseEvent[] {
  return new SseParser().push(fixture(name));
}
const data = (o: unknown): SseEvent => ({ event: undefined, data: JSON.stringify(o), id: undefined, retry: undefined });

describe('UsageExtractor', () => {
  it('OpenAI stream: the include_usage chunk, cached and reasoning tokens', () => {
    const u = new UsageExtractor('openai');
    for (const e of events('openai-stream-tools.sse')) u.push(e);
    expect(u.usage).toEqual({ inputTokens: 812, outputTokens: 57, cachedInputTokens: 512, cacheWriteTokens: 0, reasoningTokens: 0, complete: true });
    expect(u.sawEnd).toBe(true);
    expect(u.text).toBe('Je vérifie la météo 🌦…{"city":"Paris","unit":"c"}{"tz":"Europe/Paris"}');
  });

  it('OpenAI stream without usage is not complete, but its text is there to estimate from', () => {
    const u = new UsageExtractor('openai');
    for (const e of events('openai-stream-tools.sse').slice(0, 6)) u.push(e);
    expect(u.usage.complete).toBe(false);
    expect(u.sawEnd).toBe(false);
    expect(u.textLength).toBe('Je vérifie la météo 🌦…'.length);
  });

  it('Anthropic stream: message_start input + cache, message_delta output taken once (last value)', () => {
    const u = new UsageExtractor('anthropic');
    const evs = events('anthropic-stream-tools.sse');
    for (const e of evs) u.push(e);
    // A provider repeating the cumulative delta must not double the count.
    u.push(evs[evs.length - 2]!);
    expect(u.usage).toEqual({ inputTokens: 472 + 1024, outputTokens: 89, cachedInputTokens: 1024, cacheWriteTokens: 0, reasoningTokens: 0, complete: true });
    expect(u.text).toBe('D\'accord, je regarde le temps à Zürich 🌧️.{"city": "Zürich", "unit": "c"}');
  });

  it('Anthropic stream: cache writes and thinking tokens', () => {
    const u = new UsageExtractor('anthropic');
    for (const e of events('anthropic-stream-text.sse')) u.push(e);
    expect(u.usage).toEqual({ inputTokens: 325, outputTokens: 16, cachedInputTokens: 0, cacheWriteTokens: 300, reasoningTokens: 9, complete: true });
  });

  it('Anthropic message_start alone is not final usage', () => {
    const u = new UsageExtractor('anthropic');
    u.push(events('anthropic-stream-tools.sse')[0]!);
    expect(u.usage.complete).toBe(false);
    expect(u.usage.outputTokens).toBe(2);
  });

  it('JSON answers of both dialects', () => {
    const o = new UsageExtractor('openai');
    o.fromJson(JSON.parse(fixture('openai-response-tools.json').toString()));
    expect(o.usage).toMatchObject({ inputTokens: 812, outputTokens: 57, cachedInputTokens: 512, complete: true });
    const a = new UsageExtractor('anthropic');
    a.fromJson(JSON.parse(fixture('anthropic-response-tools.json').toString()));
    expect(a.usage).toMatchObject({ inputTokens: 1496, outputTokens: 89, cachedInputTokens: 1024, complete: true });
    expect(a.text).toContain('Zürich');
  });
});

describe('UsageExtractor: text-only events read only when the text is needed', () => {
  const isTextOnlyEvent = (e: SseEvent, dialect: 'openai' | 'anthropic'): boolean => readTextOnly(e, dialect) !== undefined;
  const streams = [
    ['openai', 'openai-stream-tools.sse'],
    ['openai', 'openai-stream-text.sse'],
    ['anthropic', 'anthropic-stream-tools.sse'],
    ['anthropic', 'anthropic-stream-text.sse'],
  ] as const;
  const feed = (u: UsageExtractor, evs: SseEvent[], dialect: 'openai' | 'anthropic'): void => {
    for (const e of evs) {
      const text = readTextOnly(e, dialect);
      if (text !== undefined) u.takeTextOnly(e, text);
      else u.push(e);
    }
  };

  for (const [dialect, name] of streams) {
    it(`${name}: same usage, end and text (in order) as reading every event`, () => {
      const evs = events(name);
      const eager = new UsageExtractor(dialect);
      for (const e of evs) eager.push(e);
      const lazy = new UsageExtractor(dialect);
      feed(lazy, evs, dialect);
      expect(evs.some((e) => isTextOnlyEvent(e, dialect))).toBe(true);
      expect(lazy.usage).toEqual(eager.usage);
      expect(lazy.sawEnd).toBe(eager.sawEnd);
      expect(lazy.textLength).toBe(eager.textLength);
      expect(lazy.text).toBe(eager.text);
    });
  }

  it('a stream that reports usage never parses its deltas; asking for the text does', () => {
    // Deltas with a field besides the text: not the plain shape, so kept unparsed.
    const deltas = Array.from({ length: 20 }, (_, i) => `{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"w${i} ","refusal":null},"finish_reason":null}],"usage":null}`);
    const evs = [...deltas, '{"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":20}}'].map((d) => ({ event: undefined, data: d, id: undefined, retry: undefined }));
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const u = new UsageExtractor('openai');
      feed(u, evs, 'openai');
      expect(u.usage).toMatchObject({ inputTokens: 5, outputTokens: 20, complete: true });
      expect(parse).toHaveBeenCalledTimes(1);
      expect(u.text).toBe(deltas.map((_, i) => `w${i} `).join(''));
      expect(parse).toHaveBeenCalledTimes(21);
    } finally {
      parse.mockRestore();
    }
  });

  it('the plain delta shapes give their text from the string literal alone; every other shape is left to the parser', () => {
    const plainDeltaText = (data: string, dialect: 'openai' | 'anthropic'): string | undefined =>
      readTextOnly({ event: dialect === 'anthropic' ? 'content_block_delta' : undefined, data, id: undefined, retry: undefined }, dialect) ?? undefined;
    const oa = (delta: string, extra = ''): string => `{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":${delta},"logprobs":null,"finish_reason":null}${extra}],"usage":null}`;
    expect(plainDeltaText(oa('{"content":"Hello"}'), 'openai')).toBe('Hello');
    expect(plainDeltaText(oa('{"content":"a \\"quoted\\" \\\\ path\\n é 🙂 \\u00e9"}'), 'openai')).toBe('a "quoted" \\ path\n é 🙂 é');
    expect(plainDeltaText(oa('{"content":""}'), 'openai')).toBe('');
    expect(plainDeltaText(oa('{"role":"assistant","content":"x"}'), 'openai')).toBeUndefined();
    expect(plainDeltaText(oa('{"content":"x","refusal":null}'), 'openai')).toBeUndefined();
    expect(plainDeltaText(oa('{"content":"x"}', ',{"index":1,"delta":{"content":"y"}}'), 'openai')).toBeUndefined();
    expect(plainDeltaText(oa('{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}'), 'openai')).toBeUndefined();
    expect(plainDeltaText('{"choices":[{"delta":{"content":"unterminated', 'openai')).toBeUndefined();
    expect(plainDeltaText('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bonjour \\"toi\\""}}', 'anthropic')).toBe('Bonjour "toi"');
    expect(plainDeltaText('{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"a\\""}}', 'anthropic')).toBeUndefined();
    // Whatever the shape, the text read equals what parsing the whole event gives.
    for (const [dialect, name] of streams) {
      for (const e of events(name)) {
        if (!isTextOnlyEvent(e, dialect)) continue;
        const plain = readTextOnly(e, dialect);
        if (typeof plain !== 'string') continue;
        const u = new UsageExtractor(dialect);
        u.push(e);
        expect(plain).toBe(u.text);
      }
    }
  });

  it('a learned delta shape reads the same prefix, literal and suffix, and nothing else', () => {
    const ev = (id: string, delta: string, tail = ',"logprobs":null,"finish_reason":null}],"usage":null}'): string =>
      `{"id":"${id}","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":${delta}${tail}`;
    const shape = new PlainDeltaShape();
    expect(shape.read(ev('c1', '{"content":"a"}'))).toBeUndefined(); // nothing learned yet
    const first = ev('c1', '{"content":"Hello"}');
    expect(readTextOnly({ event: undefined, data: first, id: undefined, retry: undefined }, 'openai')).toBe('Hello');
    shape.learn(first);
    expect(shape.read(ev('c1', '{"content":" world"}'))).toBe(' world');
    expect(shape.read(ev('c1', '{"content":"say \\"hi\\"\\n"}'))).toBe('say "hi"\n');
    expect(shape.read(ev('c1', '{"content":""}'))).toBe('');
    expect(shape.read(ev('c2', '{"content":"x"}'))).toBeUndefined(); // another completion's prefix
    expect(shape.read(ev('c1', '{"content":"x","refusal":null}'))).toBeUndefined(); // more than the text
    expect(shape.read(ev('c1', '{"content":"x"}', ',"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":1}}'))).toBeUndefined();
    expect(shape.read(ev('c1', '{"content":"x"}', ',"logprobs":null,"finish_reason":"stop"}],"usage":null}'))).toBeUndefined();
    expect(shape.read(ev('c1', '{"content":"unterminated'))).toBeUndefined();
    // Over real streams: whatever the shape reads, readTextOnly reads the same.
    for (const name of ['openai-stream-text.sse', 'openai-stream-tools.sse']) {
      const learned = new PlainDeltaShape();
      let read = 0;
      for (const e of events(name)) {
        const fast = learned.read(e.data);
        const slow = readTextOnly(e, 'openai');
        if (fast !== undefined) {
          read++;
          expect(fast).toBe(slow);
        } else if (typeof slow === 'string') learned.learn(e.data);
      }
      if (name === 'openai-stream-text.sse') expect(read).toBeGreaterThan(0);
    }
  });

  it('long answers: many deltas (joined as they come) and unparsed events between them keep their order', () => {
    const ev = (d: string): SseEvent => ({ event: undefined, data: d, id: undefined, retry: undefined });
    const u = new UsageExtractor('openai');
    let expected = '';
    for (let i = 0; i < 500; i++) {
      const word = `w${i} `;
      expected += word;
      // Every 7th delta in a shape read only when asked (a refusal key beside the content).
      if (i % 7 === 3) u.takeTextOnly(ev(`{"choices":[{"delta":{"content":${JSON.stringify(word)},"refusal":null}}]}`), null);
      else u.takeTextOnly(ev(`{"choices":[{"delta":{"content":${JSON.stringify(word)}}}]}`), word);
      if (i === 250) expect(u.text).toBe(expected); // asked mid-stream, then more deltas
    }
    expect(u.textLength).toBe(expected.length);
    expect(u.text).toBe(expected);
  });

  it('pending deltas are read once they pass the size bound (memory stays flat on long answers)', () => {
    const u = new UsageExtractor('openai');
    const big = 'x'.repeat(60_000);
    const parse = vi.spyOn(JSON, 'parse');
    try {
      for (let i = 0; i < 5; i++) u.takeTextOnly({ event: undefined, data: `{"choices":[{"delta":{"content":"${big}","refusal":null}}],"n":${i}}`, id: undefined, retry: undefined }, null);
      expect(parse).toHaveBeenCalledTimes(5); // 300 KB > 256 KB: read
      expect(u.textLength).toBe(5 * big.length);
    } finally {
      parse.mockRestore();
    }
  });

  it('what counts as text only', () => {
    const ev = (d: string, event?: string): SseEvent => ({ event, data: d, id: undefined, retry: undefined });
    expect(isTextOnlyEvent(ev('{"choices":[{"delta":{"content":"say \\"usage\\": {x} and \\"error\\""}}],"usage":null}'), 'openai')).toBe(true);
    expect(isTextOnlyEvent(ev('{"choices":[],"usage": {"prompt_tokens":1}}'), 'openai')).toBe(false);
    expect(isTextOnlyEvent(ev('{"error":{"message":"overloaded"}}'), 'openai')).toBe(false);
    expect(isTextOnlyEvent(ev('[DONE]'), 'openai')).toBe(false);
    expect(isTextOnlyEvent(ev('{"type":"response.output_text.delta","delta":"hi"}'), 'openai')).toBe(true);
    expect(isTextOnlyEvent(ev('{"type":"response.completed","response":{"usage":{"input_tokens":1}}}'), 'openai')).toBe(false);
    expect(isTextOnlyEvent(ev('{"type":"response.incomplete","response":{}}'), 'openai')).toBe(false);
    expect(isTextOnlyEvent(ev('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}', 'content_block_delta'), 'anthropic')).toBe(true);
    expect(isTextOnlyEvent(ev('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}'), 'anthropic')).toBe(true);
    expect(isTextOnlyEvent(ev('{"type":"message_delta","usage":{"output_tokens":3}}', 'message_delta'), 'anthropic')).toBe(false);
    expect(isTextOnlyEvent(ev('{"type":"error","error":{"type":"overloaded_error"}}', 'error'), 'anthropic')).toBe(false);
    expect(isTextOnlyEvent(ev('{"type":"message_stop"}', 'message_stop'), 'anthropic')).toBe(false);
  });
});

describe('dialectOfPath', () => {
  it('recognises the served APIs', () => {
    expect(dialectOfPath('/v1/chat/completions')).toEqual({ dialect: 'openai', api: 'chat' });
    expect(dialectOfPath('/v1/messages?beta=true')).toEqual({ dialect: 'anthropic', api: 'messages' });
    expect(dialectOfPath('/v1/messages/count_tokens')).toEqual({ dialect: 'anthropic', api: 'count_tokens' });
    expect(dialectOfPath('/v1/responses')).toEqual({ dialect: 'openai', api: 'responses' });
    expect(dialectOfPath('/v1/embeddings/')).toEqual({ dialect: 'openai', api: 'embeddings' });
    expect(dialectOfPath('/v1/models')).toEqual({ dialect: 'openai', api: 'models' });
    expect(dialectOfPath('/v1/models', { anthropic: true })).toEqual({ dialect: 'anthropic', api: 'models' });
    expect(dialectOfPath('/v1/models/gpt-4o')).toEqual({ dialect: 'openai', api: 'models', modelId: 'gpt-4o' });
    expect(dialectOfPath('/v1/files')).toBeUndefined();
    expect(dialectOfPath('/v1/chat/completions/x')).toBeUndefined();
  });
});

describe('errors', () => {
  it('Anthropic 529 overloaded → OpenAI 503 server_error', () => {
    const r = translateError('openai', 529, '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');
    expect(r).toEqual({ status: 503, body: { error: { message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded' } } });
  });
  it('OpenAI 429 → Anthropic rate_limit_error', () => {
    const r = translateError('anthropic', 429, { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded', param: null } });
    expect(r).toEqual({ status: 429, body: { type: 'error', error: { type: 'rate_limit_error', message: 'Rate limit reached' } } });
  });
  it("reads Mistral's flat body, proxies' text and the status when nothing else", () => {
    expect(readError({ object: 'error', message: 'Invalid model', type: 'invalid_request_error', code: '1500' }, 404)).toMatchObject({ message: 'Invalid model', code: '1500' });
    expect(readError('upstream connect error', 503).message).toBe('upstream connect error');
    expect(readError('', 502).message).toBe('upstream answered 502');
    expect(translateError('anthropic', 401, new TextEncoder().encode('{"message":"Unauthorized"}')).body).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: 'Unauthorized' },
    });
  });
  it('in-stream errors in each dialect', () => {
    expect(streamErrorEvent('anthropic', 529, { message: 'Overloaded' })).toBe('event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n');
    expect(streamErrorEvent('openai', 500, { message: 'x' })).toBe('data: {"error":{"message":"x","type":"server_error","param":null,"code":null}}\n\n');
  });
});

describe('stream terminate and in-stream errors', () => {
  it('OpenAI → Anthropic: cut after finish_reason closes the message normally', () => {
    const t = new OpenAIToAnthropicStream();
    const evs = events('openai-stream-tools.sse');
    let out = '';
    for (const e of evs.slice(0, evs.length - 2)) out += t.push(e); // no usage chunk, no [DONE]
    out = t.terminate('cut');
    expect(out).toContain('"stop_reason":"tool_use"');
    expect(out.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n')).toBe(true);
    expect(t.finished).toBe(true);
    expect(t.terminate('again')).toBe('');
  });
  it('OpenAI → Anthropic: an error frame becomes an error event and ends the stream', () => {
    const t = new OpenAIToAnthropicStream();
    t.push(events('openai-stream-tools.sse')[0]!);
    expect(t.push(data({ error: { message: 'boom', type: 'server_error', code: null, param: null } }))).toBe(
      'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n',
    );
    expect(t.push({ event: undefined, data: '[DONE]', id: undefined, retry: undefined })).toBe('');
  });
  it('Anthropic → OpenAI: an error event becomes an OpenAI error frame', () => {
    const t = new AnthropicToOpenAIStream({ includeUsage: false, created: 1 });
    expect(t.push(data({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }))).toBe(
      'data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}}\n\n',
    );
    expect(t.finished).toBe(true);
  });
  it('Anthropic → OpenAI: cut after message_delta ends with usage and [DONE]', () => {
    const t = new AnthropicToOpenAIStream({ includeUsage: true, created: 1 });
    const evs = events('anthropic-stream-tools.sse');
    for (const e of evs.slice(0, -1)) t.push(e);
    const out = t.terminate('cut');
    expect(out).toMatch(/"choices":\[\],"usage":\{"prompt_tokens":1496,"completion_tokens":89/);
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});

describe('plainOpenAIChat: the translation certainly succeeds (no trial needed)', () => {
  it('never says yes to a body the translator refuses, and says yes to plain text chats (random bodies)', () => {
    let seed = 99;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const content = ['hi', '', 42, null, [{ type: 'text', text: 'x' }], [{ type: 'image_url', image_url: { url: 'ftp://x' } }], [{ type: 'input_audio' }]];
    const roles = ['system', 'developer', 'user', 'assistant', 'tool', 'function', 7];
    let yes = 0;
    for (let k = 0; k < 20_000; k++) {
      const body: Record<string, unknown> = { model: 'gpt-4o', messages: Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
        const m: Record<string, unknown> = { role: pick(roles), content: pick(content) };
        if (rnd() < 0.1) m['tool_calls'] = pick([[], [{ id: 'a', function: { name: 'f', arguments: '{' } }]]);
        if (rnd() < 0.05) m['tool_call_id'] = 'a';
        return m;
      }) };
      if (rnd() < 0.2) body['n'] = pick([1, 2, '1']);
      if (rnd() < 0.2) body['stop'] = pick(['x', ['a', 'b'], [1], 5, null]);
      if (rnd() < 0.2) body['max_tokens'] = pick([1, 0, 1.5, '10', null, 4096]);
      if (rnd() < 0.1) body['tools'] = pick([[], [{ type: 'function', function: { name: 'f' } }], 'x']);
      if (rnd() < 0.1) body['tool_choice'] = pick(['auto', 'none', 'required', 5]);
      if (!plainOpenAIChat(body)) continue;
      yes++;
      expect(() => openaiToAnthropicRequest(body as unknown as OpenAIChatRequest, { model: 'claude', defaultMaxTokens: 1 })).not.toThrow();
    }
    expect(yes).toBeGreaterThan(500);
    expect(plainOpenAIChat({ model: 'gpt-4o', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }], stream: true, max_tokens: 100 })).toBe(true);
  });
});

describe('request translation edge cases', () => {
  const base: OpenAIChatRequest = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
  it('Anthropic needs max_tokens: the configured default fills it', () => {
    expect(openaiToAnthropicRequest(base, { defaultMaxTokens: 321 }).max_tokens).toBe(321);
    expect(openaiToAnthropicRequest({ ...base, max_tokens: 50 }, { defaultMaxTokens: 321 }).max_tokens).toBe(50);
  });
  it('refuses what Anthropic cannot express, naming the field', () => {
    const bad = (r: unknown): TranslationError => {
      try {
        openaiToAnthropicRequest(r as OpenAIChatRequest, { defaultMaxTokens: 10 });
      } catch (e) {
        if (e instanceof TranslationError) return e;
      }
      throw new Error('expected a TranslationError');
    };
    expect(bad({ ...base, n: 2 }).param).toBe('n');
    expect(bad({ ...base, messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] }).param).toBe('messages[0].content[0]');
    expect(bad({ ...base, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png,abc' } }] }] }).param).toBe(
      'messages[0].content[0].image_url.url',
    );
    expect(bad({ ...base, messages: [{ role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{' } }] }] }).message).toMatch(/not valid JSON/);
    expect(bad({ ...base, tool_choice: 'required' }).param).toBe('tool_choice');
  });
  it('tool_choice and parallel calls both ways', () => {
    const tools = [{ type: 'function' as const, function: { name: 'f' } }];
    expect(openaiToAnthropicRequest({ ...base, tools, tool_choice: { type: 'function', function: { name: 'f' } } }, { defaultMaxTokens: 1 }).tool_choice).toEqual({ type: 'tool', name: 'f' });
    expect(openaiToAnthropicRequest({ ...base, tools, tool_choice: 'none' }, { defaultMaxTokens: 1 }).tool_choice).toEqual({ type: 'none' });
    expect(openaiToAnthropicRequest({ ...base, tools, parallel_tool_calls: false }, { defaultMaxTokens: 1 }).tool_choice).toEqual({ type: 'auto', disable_parallel_tool_use: true });
    const a = { model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'f', input_schema: { type: 'object' } }] };
    expect(anthropicToOpenAIRequest({ ...a, tool_choice: { type: 'tool', name: 'f' } }).tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
    expect(anthropicToOpenAIRequest({ ...a, tool_choice: { type: 'none' } }).tool_choice).toBe('none');
  });
  it('refuses Anthropic server tools for OpenAI targets', () => {
    expect(() => anthropicToOpenAIRequest({ model: 'c', max_tokens: 5, messages: [], tools: [{ type: 'web_search_20250305', name: 'web_search' }] })).toThrow(TranslationError);
  });
  it('a non-streamed Anthropic request asks for no stream options', () => {
    const r = anthropicToOpenAIRequest({ model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    expect(r.stream).toBeUndefined();
    expect(r.stream_options).toBeUndefined();
  });
});

describe('Mistral', () => {
  it('tool call ids: 9 alphanumerics, stable, valid ones kept', () => {
    const id = mistralToolCallId('toolu_01T1x1fJ34qAmk2tNTrN7Up6');
    expect(id).toMatch(/^[a-zA-Z0-9]{9}$/);
    expect(mistralToolCallId('toolu_01T1x1fJ34qAmk2tNTrN7Up6')).toBe(id);
    expect(mistralToolCallId('abcDEF123')).toBe('abcDEF123');
    expect(mistralToolCallId('call_other')).not.toBe(id);
  });
  it('drops fields Mistral refuses and renames the rest', () => {
    const r = adaptForMistral({
      model: 'm',
      messages: [{ role: 'developer', content: [{ type: 'text', text: 's', cache_control: { type: 'ephemeral' } }] }],
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 9,
      seed: 4,
      store: true,
      logprobs: true,
      tool_choice: 'required',
    });
    expect(r).toEqual({ model: 'm', messages: [{ role: 'system', content: [{ type: 'text', text: 's' }] }], stream: true, max_tokens: 9, random_seed: 4, tool_choice: 'any' });
  });
});

describe('usage of the other OpenAI APIs the gateway routes', () => {
  it('embeddings: prompt tokens only', () => {
    const u = new UsageExtractor('openai');
    u.fromJson({ object: 'list', data: [{ embedding: [0.1] }], usage: { prompt_tokens: 8, total_tokens: 8 } });
    expect(u.usage).toMatchObject({ inputTokens: 8, outputTokens: 0, complete: true });
  });

  it('Responses API, JSON and streamed (usage once, in response.completed)', () => {
    const usage = { input_tokens: 36, input_tokens_details: { cached_tokens: 16 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 40 } };
    const json = new UsageExtractor('openai');
    json.fromJson({ id: 'resp_1', object: 'response', output: [{ type: 'message', content: [{ type: 'output_text', text: 'Hi there' }] }], usage });
    expect(json.usage).toMatchObject({ inputTokens: 36, outputTokens: 87, cachedInputTokens: 16, reasoningTokens: 40, complete: true });
    expect(json.text).toBe('Hi there');
    const sse = new UsageExtractor('openai');
    for (const data of [
      { type: 'response.created', response: { id: 'resp_1' } },
      { type: 'response.output_text.delta', delta: 'Hi ' },
      { type: 'response.output_text.delta', delta: 'there' },
      { type: 'response.completed', response: { id: 'resp_1', usage } },
    ]) sse.push({ event: data.type, data: JSON.stringify(data), id: undefined, retry: undefined });
    expect(sse.usage).toMatchObject({ inputTokens: 36, outputTokens: 87, cachedInputTokens: 16, reasoningTokens: 40, complete: true });
    expect(sse.sawEnd).toBe(true);
    expect(sse.text).toBe('Hi there');
  });
});
