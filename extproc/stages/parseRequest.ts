/**
 * @module stages/parseRequest
 * Reads the LLM request once: checks it is a JSON object and records the model asked for and
 * whether the client wants a stream, for the stages after it. An unreadable body follows
 * `pipeline.onInvalidRequest` (continue untouched, or 400).
 */
import { GatewayError } from '../pipeline/errors.js';
import { slot } from '../pipeline/exchange.js';
import type { StageFactory } from '../pipeline/stage.js';

/** What the client's request body says, as far as routing and accounting care. */
export interface RequestSummary {
  /** `model` field, if any. */
  readonly model: string | undefined;
  /** `stream: true` asked for an SSE answer. */
  readonly stream: boolean;
  /** The parsed body (shared, not copied: stages that change it build a new object). */
  readonly body: Readonly<Record<string, unknown>>;
}

/** Slot written by parse-request. */
export const requestSummary = slot<RequestSummary>('requestSummary');

/** The parse-request stage. */
export const parseRequestStage: StageFactory = {
  name: 'parse-request',
  writes: [requestSummary],
  create: () => ({
    name: 'parse-request',
    failure: 'open',
    requestBody(x) {
      const body = x.requestJson();
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new GatewayError('INVALID_REQUEST', 'request body must be a JSON object');
      }
      const record = body as Record<string, unknown>;
      x.set(requestSummary, {
        model: typeof record['model'] === 'string' ? record['model'] : undefined,
        stream: record['stream'] === true,
        body: record,
      });
    },
  }),
};
