/**
 * @module providers/reasons
 * Stop reasons and usage counters mapped between the dialects. Shared by JSON and stream
 * translation so both say the same thing.
 */
import type { AnthropicStopReason, AnthropicUsage, OpenAIFinishReason, OpenAIUsage } from './types.js';

/** Anthropic stop_reason → OpenAI finish_reason. */
export function toOpenAIFinish(r: string | null | undefined): OpenAIFinishReason {
  switch (r) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      // end_turn, stop_sequence, pause_turn (the turn ends here for a client that cannot resume it).
      return 'stop';
  }
}

/** OpenAI finish_reason → Anthropic stop_reason. OpenAI does not say whether a stop sequence matched. */
export function toAnthropicStop(r: string | null | undefined): AnthropicStopReason {
  switch (r) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * OpenAI usage → Anthropic usage. OpenAI's prompt_tokens include cached tokens; Anthropic's
 * input_tokens exclude cache reads (they are reported apart), so the cached part moves over.
 */
export function toAnthropicUsage(u: OpenAIUsage | null | undefined): AnthropicUsage {
  const prompt = num(u?.prompt_tokens);
  const cached = num(u?.prompt_tokens_details?.cached_tokens);
  return {
    input_tokens: Math.max(0, prompt - cached),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    output_tokens: num(u?.completion_tokens),
  };
}

/** Anthropic usage → OpenAI usage: prompt_tokens counts every input token, cached and cache-written ones included. */
export function toOpenAIUsage(u: Partial<AnthropicUsage> | null | undefined): OpenAIUsage {
  const read = num(u?.cache_read_input_tokens);
  const prompt = num(u?.input_tokens) + read + num(u?.cache_creation_input_tokens);
  const completion = num(u?.output_tokens);
  const thinking = num(u?.output_tokens_details?.thinking_tokens);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: read },
    completion_tokens_details: { reasoning_tokens: thinking },
  };
}
