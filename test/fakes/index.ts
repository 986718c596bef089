// Fake LLM providers on loopback that speak the real wire formats. See README.md beside this file.
import type { Behaviour, Dialect, ErrorSpec, FakeProvider, FakeProviderOptions, ProviderKind } from './core.js';
import { startServer } from './core.js';
import { anthropicDialect } from './anthropic.js';
import { answerFor, flattenAnthropicMessages, flattenOpenAIMessages, type ChatAnswer } from './chat.js';
import { embeddingsDialect } from './embeddings.js';
import { mistralDialect } from './mistral.js';
import { openaiDialect } from './openai.js';

export type {
  AuthOptions,
  Behaviour,
  EmbeddingOptions,
  ErrorSpec,
  FakeProvider,
  FakeProviderOptions,
  ProviderKind,
  RecordedRequest,
  ReplyContext,
  ResponseOutcome,
} from './core.js';
export { RecordedResponse } from './core.js';
export type { ChatAnswer } from './chat.js';
export { cosine, DEFAULT_EMBEDDING_DIMENSIONS, embedText, toBase64Float32 } from './embeddings.js';
export {
  countTokens,
  defaultReplyText,
  parseSSE,
  promptTokenCount,
  splitDeltas,
  sseData,
  sseEvent,
  truncateToTokens,
  type SseFrame,
} from './text.js';

const DIALECTS: Record<ProviderKind, Dialect> = {
  openai: openaiDialect,
  anthropic: anthropicDialect,
  mistral: mistralDialect,
  embeddings: embeddingsDialect,
};

/** Start a fake provider on loopback (an ephemeral port unless `port` is given). */
export function startFakeProvider(options: FakeProviderOptions): Promise<FakeProvider> {
  return startServer(DIALECTS[options.kind], options);
}

/** Start several fakes at once, e.g. `const { openai, anthropic } = await startFakeProviders(['openai', 'anthropic'])`. */
export async function startFakeProviders<K extends ProviderKind>(
  kinds: readonly K[],
  common: Omit<FakeProviderOptions, 'kind' | 'port'> = {},
): Promise<Record<K, FakeProvider>> {
  const started = await Promise.all(kinds.map((kind) => startFakeProvider({ ...common, kind })));
  return Object.fromEntries(kinds.map((k, i) => [k, started[i]!])) as Record<K, FakeProvider>;
}

/**
 * What a fake answers to a chat request body by default (reply text and token counts), so a test
 * can compute the usage a gateway should report. `options.reply` as in FakeProviderOptions.
 */
export function expectedAnswer(
  kind: Exclude<ProviderKind, 'embeddings'>,
  body: Record<string, unknown>,
  options: Pick<FakeProviderOptions, 'reply' | 'model'> & { index?: number } = {},
): ChatAnswer {
  const flat = kind === 'anthropic' ? flattenAnthropicMessages(body) : flattenOpenAIMessages(body);
  return answerFor(kind, body, flat, {
    ...(options.reply !== undefined ? { reply: options.reply } : {}),
    ...(options.model !== undefined ? { model: options.model } : {}),
    index: options.index ?? 0,
  });
}

/** Readable shorthands for common behaviours. They are plain objects: spread and combine them. */
export const faults = {
  /** 429 with the provider's rate-limit body and `retry-after` (seconds). */
  rateLimited: (retryAfter: number | string = 1, extra: Partial<ErrorSpec> = {}): Behaviour => ({
    error: { status: 429, retryAfter, ...extra },
  }),
  /** Any status with the provider's error body (500, 502, 503, 504, 529...). */
  status: (status: number, extra: Partial<ErrorSpec> = {}): Behaviour => ({ error: { status, ...extra } }),
  /** Anthropic's 529 overloaded_error (other kinds: a 529 in their own error shape). */
  overloaded: (): Behaviour => ({ error: { status: 529 } }),
  /** Drop the TCP connection before any response byte. */
  resetBeforeHeaders: (): Behaviour => ({ reset: 'before-headers' }),
  /** Send status and headers, then close the connection. */
  resetAfterHeaders: (): Behaviour => ({ reset: 'after-headers' }),
  /** Write `chunks` body chunks (SSE frames), then close the connection. */
  resetAfterChunks: (chunks: number): Behaviour => ({ resetAfterChunks: chunks }),
  /** Write `chunks` SSE frames, then end the response cleanly without the final events. */
  stopAfterChunks: (chunks: number): Behaviour => ({ stopAfterChunks: chunks }),
  /** Wait `ms` before the status line (slow first byte). */
  slowFirstByte: (ms: number): Behaviour => ({ delayMs: ms }),
  /** Write `chunks` body chunks, then wait for `provider.release()`. */
  holdAfterChunks: (chunks: number): Behaviour => ({ holdAfterChunks: chunks }),
  /** A normal answer served with another content type. */
  wrongContentType: (contentType = 'text/html; charset=utf-8'): Behaviour => ({ contentType }),
  /** The provider's in-stream error event after `afterChunks` frames. */
  streamError: (afterChunks: number, spec: ErrorSpec = { status: 529 }): Behaviour => ({ streamError: { ...spec, afterChunks } }),
} as const;
