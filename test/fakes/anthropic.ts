// Anthropic Messages wire format: POST /v1/messages (JSON and the named-event SSE sequence),
// the x-api-key / anthropic-version header checks, and {"type":"error","error":{...}} bodies.
import type { Dialect, ErrorSpec, HandlerContext, ResponsePlan } from './core.js';
import { bearer, checkCredential, header, jsonPlan, parseJsonBody, ssePlan } from './core.js';
import { answerInContext, flattenAnthropicMessages } from './chat.js';
import { alnumId, splitDeltas, sseEvent } from './text.js';

function anthropicErrorDefaults(status: number, retryAfter: string): { type: string; message: string } {
  switch (status) {
    case 400:
      return { type: 'invalid_request_error', message: 'Invalid request' };
    case 401:
      return { type: 'authentication_error', message: 'invalid x-api-key' };
    case 403:
      return { type: 'permission_error', message: 'Your API key does not have permission to use the specified resource.' };
    case 404:
      return { type: 'not_found_error', message: 'Not found' };
    case 413:
      return { type: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' };
    case 429:
      return {
        type: 'rate_limit_error',
        message: `This request would exceed the rate limit for your organization of 50 requests per minute. Please try again in ${retryAfter} seconds.`,
      };
    case 504:
      return { type: 'timeout_error', message: 'Request timed out' };
    case 529:
      return { type: 'overloaded_error', message: 'Overloaded' };
    default:
      return status >= 500
        ? { type: 'api_error', message: 'Internal server error' }
        : { type: 'invalid_request_error', message: 'Invalid request' };
  }
}

function requestId(ctx: HandlerContext): string {
  return `req_011C${alnumId(`${ctx.idSeed}:req`, 20)}`;
}

function anthropicHeaders(ctx: HandlerContext): Record<string, string> {
  return { 'request-id': requestId(ctx), 'anthropic-organization-id': '00000000-0000-4000-8000-000000000000' };
}

export function anthropicErrorBody(spec: ErrorSpec, ctx: HandlerContext): Record<string, unknown> {
  const d = anthropicErrorDefaults(spec.status, String(spec.retryAfter ?? 1));
  return {
    type: 'error',
    error: { type: spec.type ?? d.type, message: spec.message ?? d.message },
    request_id: requestId(ctx),
  };
}

export function anthropicError(spec: ErrorSpec, ctx: HandlerContext): ResponsePlan {
  const headers = anthropicHeaders(ctx);
  const retryAfter = spec.retryAfter ?? (spec.status === 429 ? 1 : undefined);
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  if (spec.status === 429) {
    headers['anthropic-ratelimit-requests-limit'] = '50';
    headers['anthropic-ratelimit-requests-remaining'] = '0';
    headers['anthropic-ratelimit-requests-reset'] = new Date(ctx.now + Number(retryAfter ?? 1) * 1000).toISOString();
  }
  return jsonPlan(spec.status, anthropicErrorBody(spec, ctx), headers);
}

/** 401/400 as the real API answers missing or wrong credentials and a missing anthropic-version. */
function anthropicAuth(ctx: HandlerContext): ResponsePlan | undefined {
  const auth = ctx.options.auth;
  if (auth === false || ctx.behaviour.skipAuth) return undefined;
  const key = header(ctx, 'x-api-key') ?? bearer(ctx);
  const verdict = checkCredential(ctx, key);
  if (verdict === 'missing') return anthropicError({ status: 401, message: 'x-api-key header is required' }, ctx);
  if (verdict === 'invalid') return anthropicError({ status: 401, message: 'invalid x-api-key' }, ctx);
  if ((auth?.requireVersion ?? true) && !header(ctx, 'anthropic-version')) {
    return anthropicError({ status: 400, message: 'anthropic-version: header is required' }, ctx);
  }
  return undefined;
}

function messages(ctx: HandlerContext, body: Record<string, unknown>): ResponsePlan {
  const err = (s: ErrorSpec): ResponsePlan => anthropicError(s, ctx);
  if (typeof body.model !== 'string' || body.model === '') return err({ status: 400, message: 'model: Field required' });
  if (typeof body.max_tokens !== 'number') return err({ status: 400, message: 'max_tokens: Field required' });
  if (!Array.isArray(body.messages)) return err({ status: 400, message: 'messages: Field required' });
  if (body.messages.length === 0) return err({ status: 400, message: 'messages: at least one message is required' });

  const answer = answerInContext(ctx, body, flattenAnthropicMessages(body));
  const id = `msg_01${alnumId(`${ctx.idSeed}:id`, 22)}`;
  const stopReason = ctx.behaviour.finishReason ?? (answer.truncated ? 'max_tokens' : 'end_turn');
  const usage = {
    input_tokens: answer.inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: answer.outputTokens,
    service_tier: 'standard',
  };
  const headers = anthropicHeaders(ctx);

  if (body.stream !== true) {
    return jsonPlan(
      200,
      {
        id,
        type: 'message',
        role: 'assistant',
        model: answer.model,
        content: [{ type: 'text', text: answer.text }],
        stop_reason: stopReason,
        stop_sequence: null,
        usage,
      },
      headers,
    );
  }

  const frames: string[] = [];
  frames.push(
    sseEvent('message_start', {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model: answer.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: Math.min(1, answer.outputTokens) },
      },
    }),
  );
  frames.push(sseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
  frames.push(sseEvent('ping', { type: 'ping' }));
  for (const d of splitDeltas(answer.text)) {
    frames.push(sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: d } }));
  }
  frames.push(sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }));
  frames.push(
    sseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: answer.outputTokens },
    }),
  );
  frames.push(sseEvent('message_stop', { type: 'message_stop' }));
  return ssePlan(frames, headers);
}

export const anthropicDialect: Dialect = {
  kind: 'anthropic',
  handle(ctx) {
    const { method, path } = ctx.request;
    if (!(method === 'POST' && path === '/v1/messages')) {
      return anthropicError({ status: 404, message: 'Not Found' }, ctx);
    }
    const denied = anthropicAuth(ctx);
    if (denied) return denied;
    const parsed = parseJsonBody(ctx, (s) => anthropicError(s, ctx), 'There was an error parsing the body of your request.');
    if (!parsed.ok) return parsed.plan;
    return messages(ctx, parsed.body);
  },
  error: anthropicError,
  streamErrorFrame: (spec, ctx) => {
    const body = anthropicErrorBody(spec, ctx);
    return sseEvent('error', { type: 'error', error: body.error });
  },
};
