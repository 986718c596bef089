/**
 * Builders for the `pii` stage tests: SSE answers in both dialects from a list of deltas, byte
 * splitting, and a client-side reassembly of what a client would read from the rewritten stream.
 */
import { parseSSE } from '../fakes/text.js';
import type { Run } from '../helpers/harness.js';

const sse = (data: unknown, event?: string): string => `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;

/** An OpenAI chat completion stream: `content` deltas, then `args` deltas of one tool call. */
export function openaiStream(content: string[], args: string[] = []): string {
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o' };
  const chunk = (delta: unknown, finish: string | null = null): string => sse({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] });
  let s = chunk({ role: 'assistant', content: '' });
  for (const d of content) s += chunk({ content: d });
  args.forEach((a, i) => {
    s += chunk({ tool_calls: [i === 0 ? { index: 0, id: 'call_1', type: 'function', function: { name: 'send', arguments: a } } : { index: 0, function: { arguments: a } }] });
  });
  s += chunk({}, args.length > 0 ? 'tool_calls' : 'stop');
  s += sse('[DONE]');
  return s;
}

/** An Anthropic messages stream: a text block of `text` deltas, then a tool_use block of `json` deltas. */
export function anthropicStream(text: string[], json: string[] = []): string {
  let s = sse({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude', content: [], stop_reason: null, usage: { input_tokens: 5, output_tokens: 0 } } }, 'message_start');
  s += sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start');
  s += sse({ type: 'ping' }, 'ping');
  for (const d of text) s += sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: d } }, 'content_block_delta');
  s += sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop');
  if (json.length > 0) {
    s += sse({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'send', input: {} } }, 'content_block_start');
    for (const d of json) s += sse({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: d } }, 'content_block_delta');
    s += sse({ type: 'content_block_stop', index: 1 }, 'content_block_stop');
  }
  s += sse({ type: 'message_delta', delta: { stop_reason: json.length > 0 ? 'tool_use' : 'end_turn' }, usage: { output_tokens: 9 } }, 'message_delta');
  s += sse({ type: 'message_stop' }, 'message_stop');
  return s;
}

/** `s` as bytes cut at the given byte offsets (ascending). */
export function cut(s: string | Buffer, at: number[]): Buffer[] {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of at) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  out.push(b.subarray(prev));
  return out;
}

/** What left the gateway on the response path (a phase that set no body forwarded the chunk). */
export function responseBytes(run: Run, chunks: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(run.responseBody.map((o, i) => o.body ?? Buffer.from(chunks[i]!)));
}

/** What a client reads from a stream: text and tool arguments, every event checked to be JSON. */
export interface Reassembled {
  text: string;
  args: string;
  events: number;
  last: string;
}

export function reassembleOpenAI(bytes: Buffer): Reassembled {
  const frames = parseSSE(bytes.toString('utf8'));
  let text = '';
  let args = '';
  const finished = new Set<number>();
  for (const f of frames) {
    if (f.data === '[DONE]') continue;
    if (f.json === undefined) throw new Error(`event is not JSON: ${f.data}`);
    for (const c of (f.json as { choices: { index: number; finish_reason?: string | null; delta?: { content?: string; tool_calls?: { function?: { arguments?: string } }[] } }[] }).choices) {
      // Clients stop reading a choice at its finish_reason: nothing may come after it.
      if (finished.has(c.index)) throw new Error(`delta for choice ${c.index} after its finish_reason`);
      if (c.finish_reason) finished.add(c.index);
      text += c.delta?.content ?? '';
      for (const t of c.delta?.tool_calls ?? []) args += t.function?.arguments ?? '';
    }
  }
  return { text, args, events: frames.length, last: frames[frames.length - 1]?.data ?? '' };
}

export function reassembleAnthropic(bytes: Buffer): Reassembled {
  const frames = parseSSE(bytes.toString('utf8'));
  let text = '';
  let args = '';
  let stopped = 0;
  for (const f of frames) {
    if (f.json === undefined) throw new Error(`event is not JSON: ${f.data}`);
    const e = f.json as { type: string; index?: number; delta?: { type: string; text?: string; partial_json?: string } };
    if (e.type !== f.event) throw new Error(`event name ${f.event} does not match type ${e.type}`);
    if (e.type === 'content_block_stop') stopped++;
    if (e.type !== 'content_block_delta') continue;
    // A delta after its block stopped would be ignored by the SDKs.
    if (e.index! < stopped) throw new Error(`delta for block ${e.index} after its content_block_stop`);
    if (e.delta?.type === 'text_delta') text += e.delta.text ?? '';
    if (e.delta?.type === 'input_json_delta') args += e.delta.partial_json ?? '';
  }
  return { text, args, events: frames.length, last: frames[frames.length - 1]?.event ?? '' };
}
