/**
 * AnswerCapture on OpenAI streams: a delta shaped like one already read in full is taken without
 * JSON.parse, and the captured answer is the same as reading every event; anything that differs
 * from the learned shape outside the text (a finish reason, a second choice, usage) is still read.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AnswerCapture } from '../../extproc/stages/cacheCapture.js';
import { SseParser, type SseEvent } from '../../extproc/providers/sse.js';
import { fixture } from '../providers/cases.js';

const head = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764083400,"model":"gpt-4o-mini","system_fingerprint":"fp_1",';
const ev = (data: string): SseEvent => ({ event: undefined, data, id: undefined, retry: undefined });
const delta = (content: string, finish: string | null = null, index = 0): SseEvent =>
  ev(`${head}"choices":[{"index":${index},"delta":{"content":${JSON.stringify(content)}},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}],"usage":null}`);
const role = ev(`${head}"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`);
const stop = ev(`${head}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`);
const usage = ev(`${head}"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}}`);
const done = ev('[DONE]');

afterEach(() => vi.restoreAllMocks());

describe('AnswerCapture (OpenAI stream)', () => {
  it('takes a long answer with a handful of JSON parses and captures it whole', () => {
    const words = Array.from({ length: 200 }, (_, i) => `w${i} ${i % 9 === 0 ? 'é "q" \\ 😀 ' : ''}`);
    const parse = vi.spyOn(JSON, 'parse');
    const c = new AnswerCapture('openai');
    c.events([role, ...words.map((w) => delta(w)), stop, usage, done]);
    // role, the first delta (learned), escaped deltas (read by parsing), stop, usage.
    expect(parse.mock.calls.length).toBeLessThan(40);
    const r = c.result();
    if (!r.ok) throw new Error(r.reason);
    expect(r.answer.text).toBe(words.join(''));
    expect(r.answer.finishReason).toBe('stop');
    expect(r.answer.model).toBe('gpt-4o-mini');
    expect(r.answer.usage).toEqual({ inputTokens: 12, outputTokens: 200 });
  });

  it('still reads what differs from the learned shape: a finish reason on a text chunk, a second choice', () => {
    const finishOnText = new AnswerCapture('openai');
    finishOnText.events([role, delta('a'), delta('b'), delta('c', 'length'), done]);
    const r = finishOnText.result();
    if (!r.ok) throw new Error(r.reason);
    expect(r.answer).toMatchObject({ text: 'abc', finishReason: 'length' });

    const twoChoices = new AnswerCapture('openai');
    twoChoices.events([role, delta('a'), delta('b'), delta('x', null, 1), stop, done]);
    expect(twoChoices.result()).toEqual({ ok: false, reason: 'multiple-choices' });
  });

  it('a recorded provider stream captures the same text as its deltas', () => {
    const evs = new SseParser().push(fixture('openai-stream-text.sse'));
    const c = new AnswerCapture('openai');
    c.events(evs);
    const r = c.result();
    if (!r.ok) throw new Error(r.reason);
    expect(r.answer.text).toBe('Bonjour! Ça va très bien 😀');
  });
});
