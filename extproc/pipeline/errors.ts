/**
 * @module pipeline/errors
 * The answers the gateway gives on its own behalf, as stable codes with their HTTP status. The
 * pipeline knows only codes and statuses; how an error body looks (OpenAI's or Anthropic's JSON)
 * is decided by the renderer the composition root hands the pipeline (`extproc/errors.ts`), so
 * a client always sees errors in its own API's shape.
 */

/** Catalogue code → HTTP status. Codes are part of the client-facing contract: never rename. */
export const errorStatus = {
  INVALID_REQUEST: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  STAGE_FAILED: 500,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
} as const;

/** A catalogue code. */
export type ErrorCode = keyof typeof errorStatus;

/** What a client-facing error carries besides its code. */
export interface ClientErrorOptions {
  /** Seconds after which the client may retry (`retry-after`), for 429 and 503. */
  readonly retryAfterSeconds?: number;
  /** Extra response headers (e.g. `x-ratelimit-*`). Lower-case names. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Machine-readable detail for Envoy's %RESPONSE_CODE_DETAILS% (defaults to `gateway_<code>`). */
  readonly details?: string;
}

/** An error the client should see, in its own dialect. */
export interface ClientError extends ClientErrorOptions {
  readonly code: ErrorCode;
  /** Shown to the client: never request data, PII or secrets. */
  readonly message: string;
}

/**
 * An error that maps to a known answer. A stage that expects a condition answers with
 * `out.fail(...)`; code that finds an unreadable request deep in a call may throw this instead.
 */
export class GatewayError extends Error implements ClientError {
  readonly retryAfterSeconds?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly details?: string;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ClientErrorOptions & { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options.headers !== undefined) this.headers = options.headers;
    if (options.details !== undefined) this.details = options.details;
  }
}

/** Codes that mean "the gateway cannot read this request", as opposed to a stage failing. */
export const UNREADABLE_CODES: ReadonlySet<ErrorCode> = new Set(['INVALID_REQUEST', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE']);
