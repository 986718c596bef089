import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { fixture, streamCases, translateChunks, type StreamCase } from './cases.js';
import { SseParser } from '../../extproc/providers/sse.js';

/**
 * The translated streams read back by the official SDKs' stream accumulators, served by a tiny
 * local HTTP server: what an SDK assembles is what the client application sees.
 */

const byName = (input: string): StreamCase => streamCases.find((c) => c.input === input)!;

/** The client's SSE for a case, optionally cut after `cutAt` upstream bytes and terminated. */
function clientStream(c: StreamCase, cutAt?: number): string {
  const input = fixture(c.input);
  if (cutAt === undefined) return translateChunks(c, [input]);
  const parser = new SseParser();
  const t = c.make();
  let out = '';
  for (const e of parser.push(input.subarray(0, cutAt))) out += t.push(e);
  return out + t.terminate('upstream closed the stream early');
}

let server: Server;
let base = '';
let next = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(next);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function openai(): OpenAI {
  return new OpenAI({ baseURL: `${base}/v1`, apiKey: 'test', maxRetries: 0 });
}
function anthropic(): Anthropic {
  return new Anthropic({ baseURL: base, apiKey: 'test', maxRetries: 0 });
}

describe('translated streams through the SDK accumulators', () => {
  it('OpenAI SDK assembles Anthropic text and tool calls, with exact usage', async () => {
    next = clientStream(byName('anthropic-stream-tools.sse'));
    const stream = openai().chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream_options: { include_usage: true } });
    const done = await stream.finalChatCompletion();
    const msg = done.choices[0]!.message;
    expect(msg.content).toBe("D'accord, je regarde le temps à Zürich 🌧️.");
    expect(msg.tool_calls?.length).toBe(1);
    const call = msg.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(call.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ city: 'Zürich', unit: 'c' });
    expect(done.choices[0]!.finish_reason).toBe('tool_calls');
    expect(done.usage).toMatchObject({ prompt_tokens: 1496, completion_tokens: 89, prompt_tokens_details: { cached_tokens: 1024 } });
  });

  it('Anthropic SDK assembles OpenAI text and two tool_use blocks, with exact usage', async () => {
    next = clientStream(byName('openai-stream-tools.sse'));
    const msg = await anthropic().messages.stream({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    expect(msg.content.map((b) => b.type)).toEqual(['text', 'tool_use', 'tool_use']);
    expect(msg.content[0]!.type === 'text' && msg.content[0]!.text).toBe('Je vérifie la météo 🌦…');
    expect(msg.content[1]!.type === 'tool_use' && msg.content[1]!.input).toEqual({ city: 'Paris', unit: 'c' });
    expect(msg.content[2]!.type === 'tool_use' && msg.content[2]!.input).toEqual({ tz: 'Europe/Paris' });
    expect(msg.stop_reason).toBe('tool_use');
    expect(msg.usage).toMatchObject({ input_tokens: 300, cache_read_input_tokens: 512, output_tokens: 57 });
  });

  it('a stream cut before its finish reaches the Anthropic SDK as an error, not a short answer', async () => {
    const c = byName('openai-stream-tools.sse');
    next = clientStream(c, 900);
    await expect(anthropic().messages.stream({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage()).rejects.toThrow(
      /upstream closed the stream early/,
    );
  });

  it('a stream cut before its finish reaches the OpenAI SDK as an error, not a short answer', async () => {
    const c = byName('anthropic-stream-tools.sse');
    next = clientStream(c, 700);
    await expect(openai().chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }).finalChatCompletion()).rejects.toThrow(
      /upstream closed the stream early/,
    );
  });
});
