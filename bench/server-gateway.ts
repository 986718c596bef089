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
import { benchCatalog as catalog, fullStages, withoutDropped } from './full-pipeline.js';

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
