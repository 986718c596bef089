/**
 * @module providers
 * Provider dialects: the incremental SSE parser, OpenAI Chat Completions ⇄ Anthropic Messages
 * translation of requests, JSON answers, streams and errors, Mistral's adaptation of the OpenAI
 * dialect, usage extraction and path recognition. Pure modules: no Envoy, no pipeline.
 */
export { SseParser, formatSseEvent, type SseEvent } from './sse.js';
export * from './types.js';
export { dialectOfPath, dialectOfRequestPath, dialectForUnknownPath, type ApiKind, type PathInfo } from './paths.js';
export { openaiToAnthropicRequest, imageSourceOf, plainOpenAIChat, type ToAnthropicOptions } from './requestToAnthropic.js';
export { anthropicToOpenAIRequest, stripCacheControl, type ToOpenAIOptions } from './requestToOpenAI.js';
export { adaptForMistral, mistralToolCallId } from './mistral.js';
export { openaiToAnthropicResponse, anthropicToOpenAIResponse } from './response.js';
export { OpenAIToAnthropicStream, type OpenAIToAnthropicStreamOptions } from './streamToAnthropic.js';
export { AnthropicToOpenAIStream, type AnthropicToOpenAIStreamOptions } from './streamToOpenAI.js';
export {
  readError,
  translateError,
  errorBody,
  openaiErrorBody,
  anthropicErrorBody,
  streamErrorEvent,
  errorStatusFor,
  anthropicErrorType,
  openaiErrorType,
  statusOfAnthropicErrorType,
  type ErrorInfo,
} from './errors.js';
export { toOpenAIFinish, toAnthropicStop, toOpenAIUsage, toAnthropicUsage } from './reasons.js';
export { UsageExtractor, type Usage } from './usage.js';
