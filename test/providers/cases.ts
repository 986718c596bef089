/**
 * The golden cases shared by the tests and the fixture writer: each input fixture, the
 * translation applied, and the file holding the expected output.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SseParser, type SseEvent } from '../../extproc/providers/sse.js';
import { OpenAIToAnthropicStream } from '../../extproc/providers/streamToAnthropic.js';
import { AnthropicToOpenAIStream } from '../../extproc/providers/streamToOpenAI.js';
import { openaiToAnthropicResponse, anthropicToOpenAIResponse } from '../../extproc/providers/response.js';
import { openaiToAnthropicRequest } from '../../extproc/providers/requestToAnthropic.js';
import { anthropicToOpenAIRequest } from '../../extproc/providers/requestToOpenAI.js';
import { adaptForMistral } from '../../extproc/providers/mistral.js';
import type { OpenAIChatRequest } from '../../extproc/providers/types.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const CREATED = 1735689600;

export function fixture(name: string): Buffer {
  return readFileSync(FIXTURES + name);
}

/** A stream translator as the tests drive it. */
export interface Translator {
  push(e: SseEvent): string;
  terminate(reason: string): string;
  readonly finished: boolean;
}

export interface StreamCase {
  input: string;
  expected: string;
  make(): Translator;
}

export const streamCases: StreamCase[] = [
  { input: 'openai-stream-tools.sse', expected: 'openai-stream-tools.to-anthropic.sse', make: () => new OpenAIToAnthropicStream() },
  { input: 'openai-stream-text.sse', expected: 'openai-stream-text.to-anthropic.sse', make: () => new OpenAIToAnthropicStream({ model: 'mistral-large-2411', inputTokensEstimate: 18 }) },
  { input: 'anthropic-stream-tools.sse', expected: 'anthropic-stream-tools.to-openai.sse', make: () => new AnthropicToOpenAIStream({ includeUsage: true, created: CREATED }) },
  { input: 'anthropic-stream-text.sse', expected: 'anthropic-stream-text.to-openai.sse', make: () => new AnthropicToOpenAIStream({ includeUsage: false, created: CREATED }) },
];

/** Feeds `bytes` in the given chunks through a parser and a translator; returns the client's SSE text. */
export function translateChunks(c: StreamCase, chunks: Uint8Array[]): string {
  const parser = new SseParser();
  const t = c.make();
  let out = '';
  for (const chunk of chunks) for (const e of parser.push(chunk)) out += t.push(e);
  parser.end();
  if (!t.finished) out += t.terminate('upstream stream ended early');
  return out;
}

export interface JsonCase {
  input: string;
  expected: string;
  run(input: unknown): unknown;
}

export const jsonCases: JsonCase[] = [
  { input: 'openai-response-tools.json', expected: 'openai-response-tools.to-anthropic.json', run: (b) => openaiToAnthropicResponse(b) },
  { input: 'anthropic-response-tools.json', expected: 'anthropic-response-tools.to-openai.json', run: (b) => anthropicToOpenAIResponse(b, { created: CREATED }) },
  {
    input: 'openai-request-tools.json',
    expected: 'openai-request-tools.to-anthropic.json',
    run: (b) => openaiToAnthropicRequest(b as OpenAIChatRequest, { model: 'claude-sonnet-4-20250514', defaultMaxTokens: 4096 }),
  },
  { input: 'anthropic-request-tools.json', expected: 'anthropic-request-tools.to-openai.json', run: (b) => anthropicToOpenAIRequest(b as Record<string, unknown>, { model: 'gpt-4o' }) },
  {
    input: 'anthropic-request-tools.json',
    expected: 'anthropic-request-tools.to-mistral.json',
    run: (b) => adaptForMistral(anthropicToOpenAIRequest(b as Record<string, unknown>, { model: 'mistral-large-latest' })),
  },
  { input: 'openai-request-tools.json', expected: 'openai-request-tools.to-mistral.json', run: (b) => adaptForMistral({ ...(b as OpenAIChatRequest), model: 'mistral-large-latest' }) },
];

/** Canonical JSON text of a translation's output, as stored in the golden files. */
export function jsonText(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}
