/**
 * The usage collector reads a chunk that is one plain delta of its stream's learned shape from
 * the bytes, without splitting it into events. Whatever way a stream is cut into chunks, and
 * whatever other stage asks for the events, the collector reads the same usage, text and model,
 * and the shared SSE parse stays what it would have been.
 */
import { describe, expect, it, vi } from 'vitest';
import { StreamExchange } from '../../extproc/pipeline/exchange.js';
import { HeaderView } from '../../extproc/pipeline/headers.js';
import { SseParser } from '../../extproc/providers/sse.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { UsageCollector } from '../../extproc/usage/collector.js';
import { fixture } from '../providers/cases.js';

const headerView = (h: Record<string, string>) => new HeaderView(Object.entries(h).map(([key, value]) => ({ key, raw_value: Buffer.from(value) })));
const head = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764083400,"model":"gpt-4o-mini","system_fingerprint":"fp_1",';
const event = (data: string): string => `data: ${data}\n\n`;
const delta = (content: string): string => event(`${head}"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"logprobs":null,"finish_reason":null}],"usage":null}`);
const role = event(`${head}"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`);
const stop = event(`${head}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`);
const usage = event(`${head}"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}`);
const done = event('[DONE]');

function exchange(): StreamExchange {
  const x = new StreamExchange(createLogger('error', () => undefined), 1 << 20, 'router');
  x.requestHeaders = headerView({ ':method': 'POST', ':path': '/v1/chat/completions' });
  x.responseHeaders = headerView({ ':status': '200', 'content-type': 'text/event-stream' });
  return x;
}

/** Feeds `chunks` to a collector; `alsoParse` asks for each chunk's events too, before or after the collector. */
function collect(chunks: Buffer[], alsoParse?: 'before' | 'after'): { c: UsageCollector; events: string[] } {
  const x = exchange();
  const c = new UsageCollector('openai');
  const events: string[] = [];
  chunks.forEach((bytes, i) => {
    const chunk = { bytes, endOfStream: i === chunks.length - 1 };
    if (alsoParse === 'before') events.push(...x.responseEvents(chunk).map((e) => e.data));
    c.chunk(x, chunk);
    if (alsoParse === 'after') events.push(...x.responseEvents(chunk).map((e) => e.data));
  });
  return { c, events };
}

function facts(c: UsageCollector): unknown {
  return { usage: c.extractor.usage, text: c.extractor.text, length: c.extractor.textLength, model: c.responseModel, error: c.streamError, end: c.extractor.sawEnd };
}

const stream = (words: string[]): string => [role, ...words.map(delta), stop, usage, done].join('');
const perEvent = (s: string): Buffer[] => s.split(/(?<=\n\n)/).map((e) => Buffer.from(e));
const everyNBytes = (s: string, n: number): Buffer[] => {
  const b = Buffer.from(s);
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
};

describe('UsageCollector: plain deltas read from the bytes', () => {
  const words = Array.from({ length: 60 }, (_, i) => (i % 11 === 5 ? `say "hi" \\ é${i}` : i % 13 === 7 ? `ctl\u0001${i}` : ` w${i} 😀`));
  const s = stream(words);
  const reference = facts(collect([Buffer.from(s)]).c); // one chunk: read event by event

  it('reads the same usage, text and model however the stream is cut', () => {
    expect(reference).toMatchObject({ usage: { inputTokens: 12, outputTokens: 7, complete: true }, model: 'gpt-4o-mini', end: true, error: false });
    expect((reference as { text: string }).text).toBe(words.join(''));
    for (const chunks of [perEvent(s), everyNBytes(s, 1), everyNBytes(s, 97), everyNBytes(s, 300)]) expect(facts(collect(chunks).c)).toEqual(reference);
  });

  it('one event per chunk: most chunks are never split into events', () => {
    const push = vi.spyOn(SseParser.prototype, 'push');
    try {
      collect(perEvent(s));
      // role (model), the first delta (learned), escaped or control-character deltas, stop, usage, [DONE].
      expect(push.mock.calls.length).toBeLessThan(20);
      expect(push.mock.calls.length).toBeGreaterThan(4);
    } finally {
      push.mockRestore();
    }
  });

  it('another stage asking for the events, before or after, gets every event, and the collector reads the same', () => {
    const all = new SseParser().push(Buffer.from(s)).map((e) => e.data);
    for (const when of ['before', 'after'] as const) {
      const { c, events } = collect(perEvent(s), when);
      expect(events).toEqual(all);
      expect(facts(c)).toEqual(reference);
    }
  });

  it('after chunks read from the bytes, an event split across chunks still parses (usage at the end)', () => {
    const chunks = [...perEvent([role, ...words.slice(0, 10).map(delta)].join('')), ...everyNBytes([stop, usage, done].join(''), 7)];
    const got = facts(collect(chunks).c) as { usage: unknown; text: string };
    expect(got.usage).toMatchObject({ inputTokens: 12, outputTokens: 7, complete: true });
    expect(got.text).toBe(words.slice(0, 10).join(''));
  });

  it('a recorded provider stream, one event per chunk', () => {
    const rec = fixture('openai-stream-text.sse').toString();
    expect(facts(collect(perEvent(rec)).c)).toEqual(facts(collect([Buffer.from(rec)]).c));
  });
});
