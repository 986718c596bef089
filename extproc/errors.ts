/**
 * @module errors
 * Renders the gateway's own errors (pipeline/errors.ts codes) in the client's API: an OpenAI
 * client gets `{"error":{"message","type","code","param"}}`, an Anthropic client gets
 * `{"type":"error","error":{"type","message"}}`, each with the status and headers its SDK
 * understands (`retry-after` on 429/503), so SDKs surface a gateway refusal exactly like a
 * provider's.
 */
import { errorStatus, type ClientError, type ErrorCode } from './pipeline/errors.js';
import type { Exchange } from './pipeline/exchange.js';
import type { ImmediateReply } from './pipeline/output.js';

/** The client API a request speaks, as far as error shapes go. */
export type ErrorDialect = 'openai' | 'anthropic';

/** Per code: OpenAI's `error.type` and Anthropic's `error.type` for the same condition. */
const errorTypes: Record<ErrorCode, { openai: string; anthropic: string }> = {
  INVALID_REQUEST: { openai: 'invalid_request_error', anthropic: 'invalid_request_error' },
  UNAUTHENTICATED: { openai: 'authentication_error', anthropic: 'authentication_error' },
  FORBIDDEN: { openai: 'permission_error', anthropic: 'permission_error' },
  NOT_FOUND: { openai: 'invalid_request_error', anthropic: 'not_found_error' },
  PAYLOAD_TOO_LARGE: { openai: 'invalid_request_error', anthropic: 'request_too_large' },
  UNSUPPORTED_MEDIA_TYPE: { openai: 'invalid_request_error', anthropic: 'invalid_request_error' },
  RATE_LIMITED: { openai: 'rate_limit_error', anthropic: 'rate_limit_error' },
  STAGE_FAILED: { openai: 'server_error', anthropic: 'api_error' },
  UNAVAILABLE: { openai: 'server_error', anthropic: 'overloaded_error' },
  TIMEOUT: { openai: 'server_error', anthropic: 'api_error' },
};

/**
 * The dialect of a request path: Anthropic's Messages API lives under `/v1/messages`
 * (count_tokens included); everything else the gateway serves speaks OpenAI's error shape.
 */
export function errorDialectOfPath(path: string | undefined): ErrorDialect {
  if (path === undefined) return 'openai';
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return p === '/v1/messages' || p.startsWith('/v1/messages/') || p === '/messages' ? 'anthropic' : 'openai';
}

/** The immediate reply for a catalogue error in `dialect`. */
export function renderErrorReply(error: ClientError, dialect: ErrorDialect): ImmediateReply {
  const status = errorStatus[error.code];
  const type = errorTypes[error.code][dialect];
  const body =
    dialect === 'anthropic'
      ? { type: 'error', error: { type, message: error.message } }
      : { error: { message: error.message, type, code: error.code.toLowerCase(), param: null } };
  const headers: Record<string, string> = { 'content-type': 'application/json', ...error.headers };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(Math.max(0, Math.ceil(error.retryAfterSeconds)));
  return { status, headers, body: JSON.stringify(body), details: error.details ?? `gateway_${error.code.toLowerCase()}` };
}

/** The pipeline's error renderer: the dialect follows the request's path. */
export function renderClientError(error: ClientError, x: Exchange): ImmediateReply {
  return renderErrorReply(error, errorDialectOfPath(x.requestHeaders?.get(':path')));
}
