// The gateway's own CPU per request without the gRPC transport: the same messages as
// `npm run bench` variant (b) (request headers, a 2 KB body, SSE response headers, 50 streamed
// chunks, half-close), decoded by the server's codec and fed to ProcessStream through a stand-in
// call object, in one process, `--concurrency` requests in flight. Prints CPU µs per request
// (all threads: the PGlite workers included) of the full pipeline and of the pass-through one,
// and their difference: what the stages cost. Steadier than the gRPC bench (no second process,
// no driver), and a CPU profile of it (`node --cpu-prof`) is not blurred by pinning.
//
//   npm run bench:inprocess -- [--requests N] [--concurrency C] [--rounds R] [--only full|pass] [--interleave]
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Metadata } from '@grpc/grpc-js';
import { parseConfig } from '../extproc/config/load.js';
import { ServiceRegistry } from '../extproc/pipeline/services.js';
import type { FilterRole } from '../extproc/pipeline/stage.js';
import { ExchangeLinks } from '../extproc/server/exchangeLinks.js';
import { constantAnswers } from '../extproc/server/grpcServer.js';
import { ProcessStream, type Call, type StreamDeps } from '../extproc/server/processStream.js';
import { keepTickObjectShape } from '../extproc/server/tickShape.js';
import { loadExtProcService, type PbProcessingResponse } from '../extproc/server/protocol.js';
import { buildPipelines, builtinStages, stageCheck, type Pipelines } from '../extproc/stages/registry.js';
import { createLogger } from '../extproc/telemetry/logger.js';
import { makeDriverContext, VARIANTS } from './envoy-driver.js';
import { loadExtProc } from './ext-proc-proto.js';
import { benchCatalog, fullStages, withoutDropped } from './full-pipeline.js';
import { AllocationProfile } from './child-protocol.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    only: { type: 'string' },
    // Messages of the `concurrency` requests in flight sent round-robin (message k of every
    // stream, then k+1), as the gRPC bench's driver does, instead of one request's in a row.
    interleave: { type: 'boolean', default: false },
  },
});

/** A stand-in for grpc-js's ServerDuplexStream: what ProcessStream uses of it. */
class FakeCall extends EventEmitter {
  readonly metadata = new Metadata();
  answers = 0;
  ended = false;
  constructor(private readonly onEnd: () => void) {
    super();
  }
  write(answer: unknown): boolean {
    // What grpc-js does with an answer: serialise it.
    serialize(answer as PbProcessingResponse);
    this.answers++;
    return true;
  }
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }
}

// As the gRPC server does at start (extproc/server/tickShape.ts).
keepTickObjectShape();
const service = loadExtProcService()['Process']!;
const serialize = service.responseSerialize as (v: PbProcessingResponse) => Buffer;
const deserialize = service.requestDeserialize as (b: Buffer) => never;

function depsFor(pipelines: Pipelines): StreamDeps {
  return {
    pipeline: (role: FilterRole) => pipelines[role],
    log: createLogger('warn'),
    ...constantAnswers(serialize),
    maxInspectBytes: 8 * 1024 * 1024,
    links: new ExchangeLinks(2000),
    onClosed: () => {},
    trackFinish: () => {},
  };
}

const ctx = makeDriverContext(loadExtProc(), VARIANTS.b, 50);
const later = [ctx.requestBodyMsg, ctx.responseHeadersMsg, ...ctx.responseChunkMsgs];
// The request-headers message with a unique request id, without protobufjs in the measurement:
// encoded once with a fixed-width marker, the id's digits written over it per request.
const ID_MARKER = 'req-000000000000';
const headersTemplate = ctx.encodeRequestHeaders(ID_MARKER);
const idAt = headersTemplate.indexOf(ID_MARKER);
function requestHeadersMsg(id: number): Buffer {
  const msg = Buffer.from(headersTemplate);
  msg.write(String(id).padStart(12, '0'), idAt + 4, 'latin1');
  return msg;
}

/** One request: every message decoded (as grpc-js would) and handed to the stream, then half-close. */
function request(deps: StreamDeps, id: number): Promise<void> {
  return new Promise((resolve) => {
    const call = new FakeCall(resolve);
    new ProcessStream(call as unknown as Call, deps);
    call.emit('data', deserialize(requestHeadersMsg(id)));
    for (const m of later) call.emit('data', deserialize(m));
    call.emit('end');
  });
}

/** `c` requests at once, their messages round-robin: every stream's state is touched in turn. */
async function interleaved(deps: StreamDeps, c: number, base: number): Promise<void> {
  const ends: Promise<void>[] = [];
  const calls: FakeCall[] = [];
  for (let i = 0; i < c; i++) {
    ends.push(
      new Promise((resolve) => {
        const call = new FakeCall(resolve);
        new ProcessStream(call as unknown as Call, deps);
        calls.push(call);
      }),
    );
  }
  for (let i = 0; i < c; i++) calls[i]!.emit('data', deserialize(requestHeadersMsg(base + i)));
  for (const m of later) {
    for (const call of calls) call.emit('data', deserialize(m));
    // Let asynchronous stages answer between messages, as a network round trip would.
    await new Promise((r) => setImmediate(r));
  }
  for (const call of calls) call.emit('end');
  await Promise.all(ends);
}

async function run(deps: StreamDeps, n: number, c: number, base: number): Promise<void> {
  if (args.interleave) {
    for (let done = 0; done < n; done += c) await interleaved(deps, Math.min(c, n - done), base + done);
    return;
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await request(deps, base + next++);
  };
  await Promise.all(Array.from({ length: c }, worker));
}

async function measure(label: string, deps: StreamDeps, n: number, c: number, rounds: number): Promise<number[]> {
  await run(deps, Math.min(1000, n), c, 0);
  const profile = await AllocationProfile.start(label);
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.cpuUsage();
    await run(deps, n, c, (r + 1) * 1_000_000);
    const d = process.cpuUsage(t0);
    perRound.push((d.user + d.system) / n);
  }
  await profile?.stop();
  const sorted = [...perRound].sort((a, b) => a - b);
  console.log(`${label.padEnd(12)} CPU µs/req median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} (rounds ${perRound.map((v) => v.toFixed(0)).join(' ')})`);
  return sorted;
}

async function main(): Promise<void> {
  const n = Number(args.requests);
  const c = Number(args.concurrency);
  const rounds = Number(args.rounds);
  console.log(`in-process: variant (b) messages, ${n} requests per round at c=${c}${args.interleave ? ' (interleaved)' : ''}, ${rounds} rounds; node ${process.version}`);
  const results: Record<string, number> = {};
  const dir = mkdtempSync(join(tmpdir(), 'bench-inprocess-'));
  const services = new ServiceRegistry(createLogger('warn'), 1000);
  try {
    for (const which of ['pass', 'full'] as const) {
      if (args.only && args.only !== which) continue;
      const raw = which === 'full' ? { logging: { level: 'warn' }, pipeline: { stages: withoutDropped(fullStages(join(dir, which))) }, ...benchCatalog } : { logging: { level: 'warn' } };
      const config = parseConfig(raw, [stageCheck(builtinStages)]);
      const generation = services.generation();
      const pipelines = buildPipelines(config, builtinStages, { log: createLogger('warn'), services: generation.services });
      generation.commit();
      // The embedded stores start in the background.
      if (which === 'full') await new Promise((r) => setTimeout(r, 8000));
      const sorted = await measure(which, depsFor(pipelines), n, c, rounds);
      results[which] = sorted[Math.floor(sorted.length / 2)]!;
    }
    if (results['full'] !== undefined && results['pass'] !== undefined) console.log(`stages cost ${(results['full'] - results['pass']).toFixed(0)} µs/req (median full − median pass-through)`);
  } finally {
    await services.closeAll();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

await main();
