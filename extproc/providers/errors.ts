/**
 * @module providers/errors
 * Error bodies in each dialect and translated between them, with the status a client of the
 * other dialect expects. Provider bodies vary (OpenAI `{error:{…}}`, Mistral's flat
 * `{object:"error",message,…}`, Anthropic `{type:"error",error:{…}}`, proxies' `{message}` or
 * plain text), so reading is lenient and writing is exact.
 */
import type { AnthropicErrorBody, Dialect, OpenAIErrorBody } from './types.js';
import { formatSseEvent } from './sse.js';

/** What an error says, independent of dialect. */
export interface ErrorInfo {
  message: string;
  /** The provider's own type string, when it gave one. */
  type?: string;
  code?: string | null;
  param?: string | null;
}

type Json = Record<string, unknown>;
function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Reads an error body of any dialect (object, JSON text or plain text). */
export function readError(body: unknown, status: number): ErrorInfo {
  let b: unknown = body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') : body;
  if (typeof b === 'string') {
    const raw: string = b;
    try {
      b = JSON.parse(raw);
    } catch {
      const text = raw.trim();
      return { message: text !== '' ? text.slice(0, 1000) : `upstream answered ${status}` };
    }
  }
  if (isObj(b)) {
    const e = isObj(b.error) ? b.error : b;
    const message = str(e.message) ?? str(b.detail) ?? (typeof b.detail === 'object' ? JSON.stringify(b.detail) : undefined) ?? str(b.error);
    const info: ErrorInfo = { message: message ?? `upstream answered ${status}` };
    const type = str(e.type);
    if (type !== undefined && type !== 'error') info.type = type;
    if (typeof e.code === 'string' || e.code === null) info.code = e.code;
    else if (typeof e.code === 'number') info.code = String(e.code);
    if (typeof e.param === 'string' || e.param === null) info.param = e.param;
    return info;
  }
  return { message: `upstream answered ${status}` };
}

/**
 * True when a provider's 400 says the prompt does not fit the model's context window: OpenAI's
 * `code: context_length_exceeded` ("This model's maximum context length is …"), Anthropic's
 * "prompt is too long: N tokens > M maximum", Mistral's "too large for model with N maximum
 * context length". Such a request may fit a step with a larger window.
 */
export function isContextLengthError(status: number, body: unknown): boolean {
  if (status !== 400 && status !== 413) return false;
  const info = readError(body, status);
  if (info.code === 'context_length_exceeded' || info.code === 'string_above_max_length') return true;
  return /maximum context length|context window|context_length|prompt is too long|too many tokens|exceeds? the (?:maximum|model's) (?:context|token)/i.test(info.message);
}

/** Anthropic's error type for a status. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 422:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    case 504:
      return 'timeout_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** The HTTP status Anthropic pairs with an error type (for errors that arrive inside a stream). */
export function statusOfAnthropicErrorType(type: string): number {
  switch (type) {
    case 'invalid_request_error':
      return 400;
    case 'authentication_error':
      return 401;
    case 'billing_error':
      return 402;
    case 'permission_error':
      return 403;
    case 'not_found_error':
      return 404;
    case 'request_too_large':
      return 413;
    case 'rate_limit_error':
      return 429;
    case 'timeout_error':
      return 504;
    case 'overloaded_error':
      return 529;
    default:
      return 500;
  }
}

/** OpenAI's error type and default code for a status. */
export function openaiErrorType(status: number): { type: string; code: string | null } {
  switch (status) {
    case 401:
      return { type: 'invalid_request_error', code: 'invalid_api_key' };
    case 403:
      return { type: 'invalid_request_error', code: 'permission_denied' };
    case 404:
      return { type: 'invalid_request_error', code: 'not_found' };
    case 413:
      return { type: 'invalid_request_error', code: 'request_too_large' };
    case 429:
      return { type: 'requests', code: 'rate_limit_exceeded' };
    case 529:
      return { type: 'server_error', code: 'overloaded' };
    default:
      return status >= 500 ? { type: 'server_error', code: null } : { type: 'invalid_request_error', code: null };
  }
}

/** The status a client of `to` should see for an upstream status. 529 is Anthropic's own; OpenAI clients get 503. */
export function errorStatusFor(to: Dialect, status: number): number {
  if (to === 'openai' && status === 529) return 503;
  return status;
}

export function openaiErrorBody(status: number, info: ErrorInfo): OpenAIErrorBody {
  const d = openaiErrorType(status);
  return { error: { message: info.message, type: d.type, param: info.param ?? null, code: info.code !== undefined ? info.code : d.code } };
}

export function anthropicErrorBody(status: number, info: ErrorInfo): AnthropicErrorBody {
  return { type: 'error', error: { type: anthropicErrorType(status), message: info.message } };
}

/** An error body in `dialect`'s shape for a status the gateway itself answers with. */
export function errorBody(dialect: Dialect, status: number, info: ErrorInfo): OpenAIErrorBody | AnthropicErrorBody {
  return dialect === 'openai' ? openaiErrorBody(status, info) : anthropicErrorBody(status, info);
}

/**
 * An upstream error answer (any dialect's body) as the client's dialect expects it: status and
 * body. Anthropic's 529 overloaded becomes 503 for OpenAI clients; OpenAI's 503 "overloaded"
 * keeps its status for Anthropic clients with type `overloaded_error` (both are retried by the SDKs).
 */
export function translateError(to: Dialect, status: number, body: unknown): { status: number; body: OpenAIErrorBody | AnthropicErrorBody } {
  const info = readError(body, status);
  const out = errorStatusFor(to, status);
  if (to === 'anthropic') return { status: out, body: anthropicErrorBody(status, { message: info.message }) };
  // Codes and params are dialect-specific: keep them only when the body already was OpenAI's.
  return { status: out, body: openaiErrorBody(status, { message: info.message, code: info.type !== undefined ? info.code : undefined, param: info.param }) };
}

/**
 * An in-stream error for the client's dialect, as SSE text: OpenAI's `data: {"error":{…}}` frame
 * (the OpenAI SDK raises it as an APIError) or Anthropic's `event: error` (the Anthropic SDK
 * raises it). Used when a stream must end before its terminal event.
 */
export function streamErrorEvent(dialect: Dialect, status: number, info: ErrorInfo): string {
  if (dialect === 'openai') return formatSseEvent({ data: JSON.stringify(openaiErrorBody(status, info)) });
  return formatSseEvent({ event: 'error', data: JSON.stringify(anthropicErrorBody(status, info)) });
}
