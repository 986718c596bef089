/**
 * @module errors
 * The gateway's own error catalogue. Every answer the gateway makes on its own behalf (bad
 * request, stage failure, limits later) is one of these codes, rendered as an OpenAI-shaped
 * JSON error so SDK clients surface it like a provider error.
 */
import type { ImmediateReply } from './pipeline/output.js';

/** Codes the gateway answers with, with their HTTP status and OpenAI error type. */
export const errorCatalogue = {
  INVALID_REQUEST: { status: 400, type: 'invalid_request_error' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, type: 'invalid_request_error' },
  PAYLOAD_TOO_LARGE: { status: 413, type: 'invalid_request_error' },
  STAGE_FAILED: { status: 500, type: 'server_error' },
} as const;

/** A catalogue code. */
export type ErrorCode = keyof typeof errorCatalogue;

/** An error that maps to a known answer. `message` is shown to the client, so it never holds request data. */
export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }
}

/** The immediate reply for a catalogue code, with an OpenAI-shaped error body. */
export function errorReply(code: ErrorCode, message: string): ImmediateReply {
  const { status, type } = errorCatalogue[code];
  return {
    status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ error: { message, type, code: code.toLowerCase(), param: null } }),
    details: `gateway_${code.toLowerCase()}`,
  };
}
