/**
 * @module server/outcome
 * How an exchange ended, from what the stream saw. Envoy ≥ 1.34 does not send its own local
 * replies (503 when a chain is exhausted, 504 on a timeout, 413 over a buffer limit) through
 * ext_proc (`envoy.reloadable_features.skip_ext_proc_on_local_reply`): the processor sees the
 * request phases, then the stream ends. A pipeline that asked for response headers and never
 * got them therefore records `no-response`, so usage logs an error and limits release their
 * reservation instead of waiting for a response that never comes.
 */
import type { Outcome, StreamExchange } from '../pipeline/exchange.js';

/** Why a stream ended, as the adapter saw it. */
export type CloseReason = 'completed' | 'cancelled' | 'error' | 'shutdown' | 'malformed';

/** The outcome of `x` when its stream closed for `reason`. */
export function outcomeOf(x: StreamExchange, reason: CloseReason, expectedResponse: boolean): Outcome {
  const status = x.responseStatus;
  const responseComplete = x.responseComplete;
  if (x.answeredImmediately) return { kind: 'immediate', status: x.immediateStatus, responseComplete: true };
  if (reason === 'shutdown') return { kind: 'shutdown', status, responseComplete };
  if (status !== undefined) {
    if (status >= 400) return { kind: 'upstream-error', status, responseComplete };
    const ended = reason === 'completed' || reason === 'malformed';
    return { kind: responseComplete || ended ? 'completed' : 'client-gone', status, responseComplete };
  }
  if (expectedResponse) return { kind: 'no-response', status: undefined, responseComplete: false };
  return { kind: reason === 'completed' || reason === 'malformed' ? 'unobserved' : 'client-gone', status: undefined, responseComplete: false };
}
