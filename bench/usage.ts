/**
 * Usage accounting costs, printed as figures (no assertion on timing):
 * 1. the `usage` stage per streamed chunk on the observability stream (target ≤ 10 µs), an
 *    OpenAI-style SSE answer of 100 chunks, parse included (x.responseEvents);
 * 2. per request: `finish` (record assembly, the log line to a null sink, metrics);
 * 3. ledger insert throughput on the embedded store, batched (target ≥ 5,000 records/s).
 *
 * Run: npx tsx bench/usage.ts [--requests 2000] [--records 20000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { StreamExchange } from '../extproc/pipeline/exchange.js';
import { HeaderView } from '../extproc/pipeline/headers.js';
import { PhaseOutput } from '../extproc/pipeline/output.js';
import { ServiceRegistry } from '../extproc/pipeline/services.js';
import { usageStage } from '../extproc/stages/usage.js';
import { requestSummary } from '../extproc/stages/parseRequest.js';
import { openStore } from '../extproc/store/index.js';
import { createLogger } from '../extproc/telemetry/logger.js';
import { LedgerWriter } from '../extproc/usage/ledger.js';
import { LEDGER_TABLE } from '../extproc/usage/ledgerSchema.js';
import { usageOptionsSchema } from '../extproc/usage/options.js';
import type { UsageRecord } from '../extproc/usage/record.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, records: { type: 'string', default: '20000' } } });
const REQUESTS = Number(values.requests);
const RECORDS = Number(values.records);
const CHUNKS = 100;

const headers = (h: Record<string, string>): HeaderView => new HeaderView(Object.entries(h).map(([key, v]) => ({ key, raw_value: Buffer.from(v) })));
const reqHeaders = headers({ ':method': 'POST', ':path': '/v1/chat/completions', 'content-type': 'application/json', 'x-request-id': 'bench', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
const respHeaders = headers({ ':status': '200', 'content-type': 'text/event-stream' });
const chunk = (i: number): Buffer =>
  Buffer.from(`data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":" word${i}"},"finish_reason":null}],"usage":null}\n\n`);
const chunks = Array.from({ length: CHUNKS }, (_, i) => chunk(i));
const last = Buffer.from(
  'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":100,"total_tokens":220}}\n\ndata: [DONE]\n\n',
);

async function main(): Promise<void> {
  const services = new ServiceRegistry(createLogger('error', () => undefined), 0);
  const gen = services.generation();
  const nullLog = createLogger('info', () => undefined);
  const catalog = { providers: {}, models: { 'gpt-4o': { provider: 'openai', pricing: { inputPerMTok: 2.5, outputPerMTok: 10 } } }, routes: [] };
  const stage = usageStage.create(usageOptionsSchema.parse({ ledger: false }), { log: nullLog, services: gen.services, catalog });
  gen.commit();
  const body = { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hello' }] };

  const exchanges = (): StreamExchange => {
    const x = new StreamExchange(nullLog, 8 << 20);
    x.requestHeaders = reqHeaders;
    x.responseHeaders = respHeaders;
    x.set(requestSummary, { model: 'gpt-4o', stream: true, body });
    return x;
  };
  // Warm-up.
  for (let r = 0; r < 200; r++) {
    const x = exchanges();
    for (const c of chunks) await stage.responseBody!(x, new PhaseOutput(), { bytes: c, endOfStream: false, observed: true });
    await stage.responseBody!(x, new PhaseOutput(), { bytes: last, endOfStream: true, observed: true });
    await stage.finish!(x, { kind: 'completed', status: 200, responseComplete: true });
  }

  let chunkNs = 0n;
  let finishNs = 0n;
  for (let r = 0; r < REQUESTS; r++) {
    const x = exchanges();
    const t0 = process.hrtime.bigint();
    for (const c of chunks) await stage.responseBody!(x, new PhaseOutput(), { bytes: c, endOfStream: false, observed: true });
    await stage.responseBody!(x, new PhaseOutput(), { bytes: last, endOfStream: true, observed: true });
    const t1 = process.hrtime.bigint();
    await stage.finish!(x, { kind: 'completed', status: 200, responseComplete: true });
    const t2 = process.hrtime.bigint();
    chunkNs += t1 - t0;
    finishNs += t2 - t1;
  }
  const perChunkUs = Number(chunkNs) / 1000 / (REQUESTS * (CHUNKS + 1));
  const perFinishUs = Number(finishNs) / 1000 / REQUESTS;
  console.log(`usage stage, observability stream: ${perChunkUs.toFixed(2)} µs per chunk (target ≤ 10), ${REQUESTS} requests × ${CHUNKS + 1} chunks of ~180 B`);
  console.log(`usage stage, finish (record + log line + no metrics): ${perFinishUs.toFixed(1)} µs per request`);
  console.log(`usage stage, whole streamed request: ${(perChunkUs * (CHUNKS + 1) + perFinishUs).toFixed(1)} µs`);
  await services.closeAll();

  // Ledger throughput on embedded PGlite.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ledger-'));
  const store = await openStore({ kind: 'embedded', dataDir: dir });
  await store.migrate();
  const base: Omit<UsageRecord, 'requestId'> = {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736', startedAt: Date.now(), caller: 'spiffe://cluster.local/ns/a/sa/b', route: 'default', api: 'chat',
    requestedModel: 'gpt-4o', servedModel: 'gpt-4o', provider: 'openai', attempts: 1, fallbackPath: [], stream: true,
    tokens: { input: 120, output: 100, cachedInput: 0, cacheWrite: 0, reasoning: 0 }, estimated: false, latencyMs: 812.5, ttftMs: 120.25,
    costMicros: 1300, priced: true, cache: 'miss', savedMicros: 0, pii: { EMAIL: 1 }, rateLimit: 'allow', rateLimitName: undefined, status: 200, outcome: 'completed', errorClass: undefined,
  };
  for (const batchSize of [100, 500, 1000]) {
    await store.pool.query(`TRUNCATE ${LEDGER_TABLE}`);
    const w = new LedgerWriter(store.pool, { batchSize, flushMs: 10 });
    const t0 = performance.now();
    for (let i = 0; i < RECORDS; i++) w.add({ ...base, requestId: `bench-${batchSize}-${i}` });
    await w.close();
    const ms = performance.now() - t0;
    const n = Number((await store.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${LEDGER_TABLE}`)).rows[0]!.n);
    console.log(`ledger, embedded PGlite, batch ${batchSize}: ${n} rows in ${ms.toFixed(0)} ms = ${Math.round((n / ms) * 1000)} records/s (target ≥ 5,000)`);
  }
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
