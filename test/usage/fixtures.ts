/** Shared builders for usage tests. */
import type { UsageRecord } from '../../extproc/usage/record.js';

let n = 0;

/** A complete record with overridable fields. */
export function sampleRecord(over: Partial<UsageRecord> = {}): UsageRecord {
  n++;
  return {
    requestId: `req-${process.pid}-${n}-${Math.random().toString(36).slice(2)}`,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    startedAt: Date.UTC(2026, 10, 20, 12, 0, 0),
    caller: 'spiffe://cluster.local/ns/a/sa/billing',
    route: 'default-chain',
    api: 'chat',
    requestedModel: 'gpt-4o',
    servedModel: 'gpt-4o',
    provider: 'openai',
    attempts: 1,
    fallbackPath: [],
    stream: true,
    tokens: { input: 100, output: 50, cachedInput: 20, cacheWrite: 0, reasoning: 0 },
    estimated: false,
    latencyMs: 120.5,
    ttftMs: 30.25,
    costMicros: 725,
    priced: true,
    cache: 'miss',
    savedMicros: 0,
    pii: { EMAIL: 1 },
    rateLimit: 'allow',
    rateLimitName: undefined,
    status: 200,
    outcome: 'completed',
    errorClass: undefined,
    ...over,
  };
}
