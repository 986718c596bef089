/**
 * Stream translation cost: a 50-chunk provider stream (text deltas, then one tool call with
 * argument pieces) fed one network chunk at a time through the SSE parser and the translator,
 * both directions. Prints µs per chunk (p50 / p99 over every chunk of every run) after a
 * warm-up. Target: ≤ 20 µs per chunk at p50.
 *
 *   npx tsx bench/translate.ts
 */
import { SseParser } from '../extproc/providers/sse.js';
import { OpenAIToAnthropicStream } from '../extproc/providers/streamToAnthropic.js';
import { AnthropicToOpenAIStream } from '../extproc/providers/streamToOpenAI.js';
import { UsageExtractor } from '../extproc/providers/usage.js';

const CHUNKS = 50;
const RUNS = 2000;
const WARMUP = 300;
const enc = new TextEncoder();

function openaiStream(): Uint8Array[] {
  const base = { id: 'chatcmpl-B9xYz', object: 'chat.completion.chunk', created: 1735689600, model: 'gpt-4o-2024-08-06', system_fingerprint: 'fp_50cad350e4' };
  const frame = (delta: unknown, finish: string | null = null): string => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null })}\n\n`;
  const out: string[] = [frame({ role: 'assistant', content: '' })];
  for (let i = 0; out.length < CHUNKS - 8; i++) out.push(frame({ content: ` mot${i} é 🌦` }));
  out.push(frame({ tool_calls: [{ index: 0, id: 'call_Q1w2E3r4T5y6', type: 'function', function: { name: 'get_weather', arguments: '' } }] }));
  for (const a of ['{"ci', 'ty":"Par', 'is","unit"', ':"c"}']) out.push(frame({ tool_calls: [{ index: 0, function: { arguments: a } }] }));
  out.push(frame({}, 'tool_calls'));
  out.push(`data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 812, completion_tokens: 57, total_tokens: 869, prompt_tokens_details: { cached_tokens: 512 } } })}\n\n`);
  out.push('data: [DONE]\n\n');
  return out.map((s) => enc.encode(s));
}

function anthropicStream(): Uint8Array[] {
  const ev = (type: string, o: unknown): string => `event: ${type}\ndata: ${JSON.stringify(o)}\n\n`;
  const out: string[] = [
    ev('message_start', {
      type: 'message_start',
      message: { id: 'msg_01XFDUDYJgAACzvnptvVoYEL', type: 'message', role: 'assistant', model: 'claude-sonnet-4-20250514', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 472, cache_read_input_tokens: 1024, output_tokens: 2 } },
    }),
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  ];
  for (let i = 0; out.length < CHUNKS - 8; i++) out.push(ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ` mot${i} é 🌦` } }));
  out.push(ev('content_block_stop', { type: 'content_block_stop', index: 0 }));
  out.push(ev('content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6', name: 'get_weather', input: {} } }));
  for (const p of ['{"ci', 'ty": "Z', 'ürich"}']) out.push(ev('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: p } }));
  out.push(ev('content_block_stop', { type: 'content_block_stop', index: 1 }));
  out.push(ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 89 } }));
  out.push(ev('message_stop', { type: 'message_stop' }));
  return out.map((s) => enc.encode(s));
}

interface Translator {
  push(e: import('../extproc/providers/sse.js').SseEvent, json?: unknown): string;
}

/** Per-chunk times (ns) of parse + translate (+ usage extraction when `withUsage`), sharing one JSON.parse as a stage would. */
function measure(chunks: Uint8Array[], make: () => Translator, dialect: 'openai' | 'anthropic', withUsage: boolean): number[] {
  const times: number[] = [];
  let sink = 0;
  for (let r = 0; r < WARMUP + RUNS; r++) {
    const parser = new SseParser();
    const t = make();
    const usage = withUsage ? new UsageExtractor(dialect) : undefined;
    for (const c of chunks) {
      const t0 = process.hrtime.bigint();
      for (const e of parser.push(c)) {
        const json = e.data === '[DONE]' ? null : JSON.parse(e.data);
        sink += t.push(e, json ?? undefined).length;
        usage?.push(e, json ?? undefined);
      }
      const dt = Number(process.hrtime.bigint() - t0);
      if (r >= WARMUP) times.push(dt);
    }
  }
  if (sink === 0) throw new Error('nothing translated');
  return times;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function report(name: string, times: number[]): void {
  const s = [...times].sort((a, b) => a - b);
  const us = (ns: number): string => (ns / 1000).toFixed(2).padStart(7);
  console.log(`${name.padEnd(52)} p50 ${us(pct(s, 50))} µs   p99 ${us(pct(s, 99))} µs   (${s.length} chunks)`);
}

const oa = openaiStream();
const an = anthropicStream();
console.log(`stream translation, ${CHUNKS} chunks per stream, ${RUNS} streams per row (after ${WARMUP} warm-up), node ${process.version}`);
report('OpenAI → Anthropic (parse + translate)', measure(oa, () => new OpenAIToAnthropicStream(), 'openai', false));
report('Anthropic → OpenAI (parse + translate)', measure(an, () => new AnthropicToOpenAIStream({ includeUsage: true }), 'anthropic', false));
report('OpenAI → Anthropic (parse + translate + usage)', measure(oa, () => new OpenAIToAnthropicStream(), 'openai', true));
report('Anthropic → OpenAI (parse + translate + usage)', measure(an, () => new AnthropicToOpenAIStream({ includeUsage: true }), 'anthropic', true));
report('SSE parse + JSON.parse only (OpenAI chunks)', measure(oa, () => ({ push: () => ' ' }), 'openai', false));
