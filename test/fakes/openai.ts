// OpenAI Chat Completions wire format: POST /v1/chat/completions (JSON and SSE), plus
// POST /v1/embeddings, with OpenAI's error bodies {"error":{"message","type","param","code"}}.
import type { Dialect, ErrorSpec, HandlerContext, ResponsePlan } from './core.js';
import { bearer, checkCredential, jsonPlan, parseJsonBody, ssePlan } from './core.js';
import { answerInContext, flattenOpenAIMessages } from './chat.js';
import { embeddingsResponse } from './embeddings.js';
import { alnumId, hexId, splitDeltas, sseData } from './text.js';

interface ErrorDefaults {
  type: string;
  code: string | null;
  message: string;
}

function openaiErrorDefaults(status: number, retryAfter: string): ErrorDefaults {
  switch (status) {
    case 400:
      return { type: 'invalid_request_error', code: null, message: 'Invalid request.' };
    case 401:
      return {
        type: 'invalid_request_error',
        code: 'invalid_api_key',
        message: 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
      };
    case 403:
      return { type: 'invalid_request_error', code: 'unsupported_country_region_territory', message: 'Country, region, or territory not supported' };
    case 404:
      return { type: 'invalid_request_error', code: 'model_not_found', message: 'The model does not exist or you do not have access to it.' };
    case 429:
      return {
        type: 'requests',
        code: 'rate_limit_exceeded',
        message: `Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in ${retryAfter}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
      };
    case 500:
      return { type: 'server_error', code: null, message: 'The server had an error while processing your request. Sorry about that!' };
    case 502:
      return { type: 'server_error', code: null, message: 'Bad gateway.' };
    case 503:
      return { type: 'server_error', code: null, message: 'The engine is currently overloaded, please try again later.' };
    case 504:
      return { type: 'server_error', code: null, message: 'Gateway timeout.' };
    default:
      return status >= 500
        ? { type: 'server_error', code: null, message: 'The server had an error while processing your request.' }
        : { type: 'invalid_request_error', code: null, message: 'Invalid request.' };
  }
}

/** Response headers every OpenAI answer carries. */
export function openaiHeaders(ctx: HandlerContext): Record<string, string> {
  return {
    'x-request-id': `req_${hexId(`${ctx.idSeed}:req`, 32)}`,
    'openai-version': '2020-10-01',
    'openai-processing-ms': '1',
  };
}

/** The `{"error": {...}}` object for a spec. */
export function openaiErrorObject(spec: ErrorSpec): { message: string; type: string; param: string | null; code: string | null } {
  const d = openaiErrorDefaults(spec.status, String(spec.retryAfter ?? 1));
  return {
    message: spec.message ?? d.message,
    type: spec.type ?? d.type,
    param: spec.param ?? null,
    code: spec.code !== undefined ? spec.code : d.code,
  };
}

export function openaiError(spec: ErrorSpec, ctx: HandlerContext): ResponsePlan {
  const headers = openaiHeaders(ctx);
  const retryAfter = spec.retryAfter ?? (spec.status === 429 ? 1 : undefined);
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  if (spec.status === 429) {
    headers['x-ratelimit-limit-requests'] = '3';
    headers['x-ratelimit-remaining-requests'] = '0';
    headers['x-ratelimit-reset-requests'] = `${retryAfter ?? 1}s`;
  }
  return jsonPlan(spec.status, { error: openaiErrorObject(spec) }, headers);
}

/** OpenAI's in-stream error: a data frame holding `{"error": {...}}`. */
export function openaiErrorFrame(spec: ErrorSpec): string {
  return sseData({ error: openaiErrorObject(spec) });
}

export function openaiNotFound(ctx: HandlerContext): ResponsePlan {
  const { method, path } = ctx.request;
  return openaiError({ status: 404, message: `Invalid URL (${method} ${path})`, code: null }, ctx);
}

/** 401 in OpenAI's words, or undefined when the credential passes. */
export function openaiAuth(ctx: HandlerContext): ResponsePlan | undefined {
  const key = bearer(ctx);
  const verdict = checkCredential(ctx, key);
  if (verdict === 'missing') {
    return openaiError(
      {
        status: 401,
        code: null,
        message:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
      },
      ctx,
    );
  }
  if (verdict === 'invalid') {
    const k = key ?? '';
    const masked = k.length > 8 ? `${k.slice(0, 3)}${'*'.repeat(Math.max(0, k.length - 7))}${k.slice(-4)}` : '****';
    return openaiError(
      {
        status: 401,
        code: 'invalid_api_key',
        message: `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      },
      ctx,
    );
  }
  return undefined;
}

function chatCompletion(ctx: HandlerContext, body: Record<string, unknown>): ResponsePlan {
  const err = (s: ErrorSpec): ResponsePlan => openaiError(s, ctx);
  if (typeof body.model !== 'string' || body.model === '') {
    return err({ status: 400, message: 'you must provide a model parameter', code: null });
  }
  if (!Array.isArray(body.messages)) {
    return err({ status: 400, message: "Missing required parameter: 'messages'.", param: 'messages', code: 'missing_required_parameter' });
  }
  if (body.messages.length === 0) {
    return err({
      status: 400,
      message: "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      param: 'messages',
      code: 'empty_array',
    });
  }
  const answer = answerInContext(ctx, body, flattenOpenAIMessages(body));
  const id = `chatcmpl-${alnumId(`${ctx.idSeed}:id`, 29)}`;
  const created = Math.floor(ctx.now / 1000);
  const systemFingerprint = `fp_${hexId(`fp:${answer.model}`, 10)}`;
  const finishReason = ctx.behaviour.finishReason ?? (answer.truncated ? 'length' : 'stop');
  const usage = {
    prompt_tokens: answer.inputTokens,
    completion_tokens: answer.outputTokens,
    total_tokens: answer.inputTokens + answer.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  const headers = openaiHeaders(ctx);

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
            message: { role: 'assistant', content: answer.text, refusal: null, annotations: [] },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
        service_tier: 'default',
        system_fingerprint: systemFingerprint,
      },
      headers,
    );
  }

  const so = body.stream_options;
  const includeUsage = typeof so === 'object' && so !== null && (so as Record<string, unknown>).include_usage === true;
  const base = { id, object: 'chat.completion.chunk', created, model: answer.model, service_tier: 'default', system_fingerprint: systemFingerprint };
  const tail = includeUsage ? { usage: null } : {};
  const frames: string[] = [];
  frames.push(
    sseData({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], ...tail }),
  );
  for (const d of splitDeltas(answer.text)) {
    frames.push(sseData({ ...base, choices: [{ index: 0, delta: { content: d }, logprobs: null, finish_reason: null }], ...tail }));
  }
  frames.push(sseData({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }], ...tail }));
  if (includeUsage) frames.push(sseData({ ...base, choices: [], usage }));
  frames.push(sseData('[DONE]'));
  return ssePlan(frames, headers);
}

export const openaiDialect: Dialect = {
  kind: 'openai',
  handle(ctx) {
    const { method, path } = ctx.request;
    const chat = method === 'POST' && path === '/v1/chat/completions';
    const embeddings = method === 'POST' && path === '/v1/embeddings';
    if (!chat && !embeddings) return openaiNotFound(ctx);
    const denied = openaiAuth(ctx);
    if (denied) return denied;
    const err = (s: ErrorSpec): ResponsePlan => openaiError(s, ctx);
    const parsed = parseJsonBody(ctx, err);
    if (!parsed.ok) return parsed.plan;
    if (embeddings) return embeddingsResponse(ctx, parsed.body, err, openaiHeaders(ctx));
    return chatCompletion(ctx, parsed.body);
  },
  error: openaiError,
  streamErrorFrame: (spec) => openaiErrorFrame(spec),
};
