// Mistral chat completions: POST /v1/chat/completions, OpenAI-like but with Mistral's shapes:
// 32-hex ids, `tool_calls: null` in the message, no system_fingerprint, and in streams the
// usage rides on the final chunk (the one with finish_reason) whether or not it was asked for.
// Errors: {"object":"error","message","type","param","code"}; 401 is {"message":"Unauthorized"}.
import type { Dialect, ErrorSpec, HandlerContext, ResponsePlan } from './core.js';
import { bearer, checkCredential, jsonPlan, parseJsonBody, ssePlan } from './core.js';
import { answerInContext, flattenOpenAIMessages } from './chat.js';
import { embeddingsResponse } from './embeddings.js';
import { hexId, splitDeltas, sseData } from './text.js';

function mistralErrorDefaults(status: number): { type: string; code: string | null; message: string } {
  switch (status) {
    case 400:
      return { type: 'invalid_request_error', code: null, message: 'Invalid request' };
    case 404:
      return { type: 'invalid_request_error', code: '1500', message: 'Invalid model' };
    case 422:
      return { type: 'invalid_request_error', code: null, message: 'Unprocessable entity' };
    case 429:
      return { type: 'rate_limited', code: '1300', message: 'Rate limit exceeded' };
    case 500:
      return { type: 'internal_server_error', code: null, message: 'Internal server error' };
    case 502:
      return { type: 'bad_gateway', code: null, message: 'Bad gateway' };
    case 503:
      return { type: 'service_unavailable', code: null, message: 'Service tier capacity exceeded for this model.' };
    case 504:
      return { type: 'gateway_timeout', code: null, message: 'Gateway timeout' };
    default:
      return status >= 500
        ? { type: 'internal_server_error', code: null, message: 'Internal server error' }
        : { type: 'invalid_request_error', code: null, message: 'Invalid request' };
  }
}

function mistralHeaders(ctx: HandlerContext): Record<string, string> {
  return { 'mistral-correlation-id': hexId(`${ctx.idSeed}:corr`, 32) };
}

export function mistralErrorBody(spec: ErrorSpec, ctx: HandlerContext): Record<string, unknown> {
  if (spec.status === 401 && spec.type === undefined && spec.code === undefined) {
    return { message: spec.message ?? 'Unauthorized', request_id: hexId(`${ctx.idSeed}:rid`, 32) };
  }
  const d = mistralErrorDefaults(spec.status);
  return {
    object: 'error',
    message: spec.message ?? d.message,
    type: spec.type ?? d.type,
    param: spec.param ?? null,
    code: spec.code !== undefined ? spec.code : d.code,
  };
}

export function mistralError(spec: ErrorSpec, ctx: HandlerContext): ResponsePlan {
  const headers = mistralHeaders(ctx);
  const retryAfter = spec.retryAfter ?? (spec.status === 429 ? 1 : undefined);
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  return jsonPlan(spec.status, mistralErrorBody(spec, ctx), headers);
}

function chat(ctx: HandlerContext, body: Record<string, unknown>): ResponsePlan {
  const err = (s: ErrorSpec): ResponsePlan => mistralError(s, ctx);
  if (typeof body.model !== 'string' || body.model === '') {
    return err({ status: 422, message: 'model: Field required' });
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return err({ status: 422, message: 'messages: Field required' });
  }
  const answer = answerInContext(ctx, body, flattenOpenAIMessages(body));
  const id = hexId(`${ctx.idSeed}:id`, 32);
  const created = Math.floor(ctx.now / 1000);
  const finishReason = ctx.behaviour.finishReason ?? (answer.truncated ? 'length' : 'stop');
  const usage = {
    prompt_tokens: answer.inputTokens,
    total_tokens: answer.inputTokens + answer.outputTokens,
    completion_tokens: answer.outputTokens,
  };
  const headers = mistralHeaders(ctx);

  if (body.stream !== true) {
    return jsonPlan(
      200,
      {
        id,
        object: 'chat.completion',
        created,
        model: answer.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', tool_calls: null, content: answer.text },
            finish_reason: finishReason,
          },
        ],
        usage,
      },
      headers,
    );
  }

  const base = { id, object: 'chat.completion.chunk', created, model: answer.model };
  const frames: string[] = [];
  frames.push(sseData({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }));
  for (const d of splitDeltas(answer.text)) {
    frames.push(sseData({ ...base, choices: [{ index: 0, delta: { content: d }, finish_reason: null }] }));
  }
  frames.push(sseData({ ...base, choices: [{ index: 0, delta: { content: '' }, finish_reason: finishReason }], usage }));
  frames.push(sseData('[DONE]'));
  return ssePlan(frames, headers);
}

export const mistralDialect: Dialect = {
  kind: 'mistral',
  handle(ctx) {
    const { method, path } = ctx.request;
    const isChat = method === 'POST' && path === '/v1/chat/completions';
    const isEmbeddings = method === 'POST' && path === '/v1/embeddings';
    if (!isChat && !isEmbeddings) return mistralError({ status: 404, message: 'Not Found', code: null }, ctx);
    const verdict = checkCredential(ctx, bearer(ctx));
    if (verdict !== 'ok') return mistralError({ status: 401 }, ctx);
    const err = (s: ErrorSpec): ResponsePlan => mistralError(s, ctx);
    const parsed = parseJsonBody(ctx, err, 'Invalid JSON body');
    if (!parsed.ok) return parsed.plan;
    if (isEmbeddings) return embeddingsResponse(ctx, parsed.body, err, mistralHeaders(ctx), 'mistral');
    return chat(ctx, parsed.body);
  },
  error: mistralError,
  streamErrorFrame: (spec, ctx) => sseData(mistralErrorBody(spec, ctx)),
};
