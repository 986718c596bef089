// "Ours": the gateway's ext_proc server, started through its public API. Runs as a child process
// of bench/extproc-overhead.ts (see child-protocol.ts); the parent starts it only when
// extproc/app exists.
//   default             no stages: the pass-through pipeline
//   BENCH_PIPELINE=full every stage of config/embedded.yaml on embedded backends (PGlite cache and
//                       ledger in a temp dir, in-memory limiter, local embedder). No answer is ever
//                       stored (maxAnswerChars: 1), so every request pays a full cache miss: exact
//                       lookup, embedding, in-scope vector search; same messages as the floor gets.
// child-protocol first: it switches tsx's source maps off before the gateway's modules load.
import { runChild, type ServerHandle } from './child-protocol.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../extproc/app.js';
import { parseConfig } from '../extproc/config/load.js';
import { builtinStages, stageCheck } from '../extproc/stages/registry.js';

/** The catalog the full pipeline routes with (config/gateway.yaml's default chain). */
const catalog = {
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

function fullStages(dir: string): unknown[] {
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
function withoutDropped(stages: unknown[]): unknown[] {
  const drop = new Set((process.env['BENCH_WITHOUT'] ?? '').split(',').filter(Boolean));
  return stages.filter((s) => !drop.has(typeof s === 'string' ? s : (s as { name: string }).name));
}

async function startOurs(): Promise<ServerHandle> {
  const full = process.env['BENCH_PIPELINE'] === 'full';
  const dir = full ? mkdtempSync(join(tmpdir(), 'bench-full-')) : undefined;
  const raw = dir
    ? { server: { host: '127.0.0.1', port: 0 }, logging: { level: 'warn' }, pipeline: { stages: withoutDropped(fullStages(dir)) }, ...catalog }
    : { server: { host: '127.0.0.1', port: 0 }, logging: { level: 'warn' } };
  const gw = await startGateway({ config: parseConfig(raw, [stageCheck(builtinStages)]) });
  if (full) await new Promise((r) => setTimeout(r, 8000)); // the embedded stores start in the background
  return {
    port: gw.port,
    close: async () => {
      await gw.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

runChild('ours', startOurs);
