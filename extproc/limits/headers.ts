/**
 * @module limits/headers
 * OpenAI-style rate-limit headers from a decision: `x-ratelimit-limit-requests`,
 * `-remaining-requests`, `-reset-requests` and the `-tokens` variants, plus `retry-after`
 * (whole seconds, rounded up) on a refusal.
 */
import type { Decision, RateLimitInfo } from './types.js';

/** Milliseconds as OpenAI writes resets: `250ms`, `1s`, `6m0s`, `1h2m3s`. */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  let s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** Where headers go: a phase's output, or a plain record. */
export interface HeaderSink {
  setHeader(name: string, value: string): void;
}

const KINDS = ['requests', 'tokens'] as const;

/** Header names per kind, made once (they are set on every admitted answer). */
const NAMES = {
  requests: ['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests'],
  tokens: ['x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens'],
} as const;

/** Sets the headers for the figures of a decision (none for a kind with no configured limit). */
export function setRateLimitHeaders(out: HeaderSink, info: RateLimitInfo): void {
  for (const kind of KINDS) {
    const f = info[kind];
    if (!f) continue;
    const [limit, remaining, reset] = NAMES[kind];
    out.setHeader(limit, String(f.limit));
    out.setHeader(remaining, String(f.remaining));
    out.setHeader(reset, formatReset(f.resetMs));
  }
}

/** Headers for the figures of a decision (none for a kind with no configured limit). */
export function rateLimitHeaders(info: RateLimitInfo): Record<string, string> {
  const h: Record<string, string> = {};
  setRateLimitHeaders({ setHeader: (name, value) => (h[name] = value) }, info);
  return h;
}

/** All headers for a decision: the figures, and `retry-after` (seconds) when refused. */
export function decisionHeaders(decision: Decision): Record<string, string> {
  const h = rateLimitHeaders(decision.info);
  if (!decision.admitted) h['retry-after'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  return h;
}
