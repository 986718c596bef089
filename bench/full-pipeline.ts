// The full pipeline the benches measure: every stage of config/embedded.yaml on embedded
// backends (PGlite cache and ledger under `dir`, in-memory limiter, local embedder), and the
// catalog it routes with. Shared by the gRPC bench's server child and the in-process bench.
import { join } from 'node:path';

/** The catalog the full pipeline routes with (config/gateway.yaml's default chain). */
export const benchCatalog = {
  providers: {
    openai: { api: 'openai', cluster: 'openai', apiKey: 'sk-bench' },
    anthropic: { api: 'anthropic', cluster: 'anthropic', apiKey: 'sk-ant-bench' },
  },
  models: {
    'gpt-4o-mini': { provider: 'openai', contextWindow: 128000, pricing: { inputPerMTok: 0.15, outputPerMTok: 0.6 } },
    'claude-sonnet-4': { provider: 'anthropic', upstreamName: 'claude-sonnet-4-20250514', contextWindow: 200000, pricing: { inputPerMTok: 3, outputPerMTok: 15 } },
  },
  routes: [{ name: 'default-chain', model: 'gpt-4o-mini', fallback: ['claude-sonnet-4'] }],
};

/** Every stage of the full pipeline, its stores under `dir`. No answer is ever stored (maxAnswerChars: 1): every request is a miss. */
export function fullStages(dir: string): unknown[] {
  return [
    'parse-request',
    'identity',
    'pii',
    'route',
    { name: 'semantic-cache', store: { kind: 'embedded', dataDir: join(dir, 'cache') }, maxAnswerChars: 1 },
    { name: 'rate-limit', backend: 'memory', limits: [{ scope: 'caller', requestsPerMinute: 100_000_000, inputTokensPerMinute: 1_000_000_000_000 }] },
    'translate',
    { name: 'usage', log: false, ledger: { store: { kind: 'embedded', dataDir: join(dir, 'usage') } } },
  ];
}

/** BENCH_WITHOUT=a,b drops stages from the full pipeline, to see what each one costs. */
export function withoutDropped(stages: unknown[]): unknown[] {
  const drop = new Set((process.env['BENCH_WITHOUT'] ?? '').split(',').filter(Boolean));
  return stages.filter((s) => !drop.has(typeof s === 'string' ? s : (s as { name: string }).name));
}
