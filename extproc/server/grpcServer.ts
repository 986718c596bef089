/**
 * @module server/grpcServer
 * The gRPC server: the ext_proc service, the health service, message size limits matched to
 * Envoy's body buffer limits, keepalive, and graceful drain (health NOT_SERVING → refuse new
 * streams → let streams in flight finish until a deadline → cancel the rest).
 */
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { FilterRole } from '../pipeline/stage.js';
import { PhaseOutput } from '../pipeline/output.js';
import type { Logger } from '../telemetry/logger.js';
import { encodeResponse, responseKindFor } from './encode.js';
import { ExchangeLinks } from './exchangeLinks.js';
import { HealthService } from './health.js';
import { ProcessStream, type StreamDeps } from './processStream.js';
import { loadExtProcService, type PbProcessingMode, type PbProcessingRequest, type PbProcessingResponse, type RequestKind } from './protocol.js';
import { keepTickObjectShape } from './tickShape.js';

/** Settings of the gRPC listener. */
export interface GrpcServerOptions {
  host: string;
  port: number;
  maxMessageBytes: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  maxInspectBytes: number;
  /** How long an exchange waits for its observability stream after the main stream closed. */
  observerLingerMs: number;
}

/** A running ext_proc gRPC server. */
export interface ExtProcServer {
  readonly port: number;
  readonly health: HealthService;
  /** Streams currently open. */
  readonly activeStreams: number;
  /** Finish hooks still running. */
  readonly pendingFinishes: number;
  /** Drains: NOT_SERVING, stop accepting, wait up to `graceMs`, then cancel what is left. */
  shutdown(graceMs: number): Promise<void>;
}

const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

/**
 * The answers that never change, encoded once: a plain CONTINUE per message kind, and the
 * request-headers answer of each pipeline and mode override (pass-through answers differ only
 * by those).
 */
export function constantAnswers(serialize: (response: PbProcessingResponse) => Buffer): Pick<StreamDeps, 'continueFor' | 'encodeOnce'> {
  const continueFor = Object.fromEntries(
    (Object.keys(responseKindFor) as RequestKind[]).map((kind) => [kind, serialize(encodeResponse(kind, new PhaseOutput()))]),
  ) as Record<RequestKind, Buffer>;
  const encoded = new WeakMap<Pipeline, Map<string, Buffer>>();
  const encodeOnce = (p: Pipeline, override: PbProcessingMode): Buffer => {
    let byOverride = encoded.get(p);
    if (!byOverride) encoded.set(p, (byOverride = new Map()));
    const key = `${override.request_body_mode}/${override.response_body_mode}/${override.response_header_mode}`;
    let bytes = byOverride.get(key);
    if (!bytes) byOverride.set(key, (bytes = serialize(encodeResponse('request_headers', new PhaseOutput(), override))));
    return bytes;
  };
  return { continueFor, encodeOnce };
}

/** Starts the server; `pipeline(role)` is read at each stream's start, so reloads never touch streams in flight. */
export async function startExtProcServer(options: GrpcServerOptions, pipeline: (role: FilterRole) => Pipeline, log: Logger): Promise<ExtProcServer> {
  // Keeps the maps of nextTick's queue entries alive: see tickShape.ts (~8% of the serving
  // thread's CPU once V8 has lost them).
  keepTickObjectShape();
  const service = loadExtProcService();
  const { continueFor, encodeOnce } = constantAnswers(service['Process']!.responseSerialize);

  const server = new Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    'grpc.keepalive_time_ms': options.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
  });
  const streams = new Set<ProcessStream>();
  const links = new ExchangeLinks(options.observerLingerMs);
  // Finish hooks still running (usage records, limit settlements): shutdown waits for them.
  // Counted, with one settle callback for all (no closure per stream: see processStream's
  // HOT_PATH_FUNCTIONS).
  let finishing = 0;
  let allFinished: (() => void) | undefined;
  const finished = (): void => {
    if (--finishing === 0) allFinished?.();
  };
  // Shared by every stream (one object, not one per stream).
  const deps: StreamDeps = {
    pipeline,
    log,
    continueFor,
    encodeOnce,
    maxInspectBytes: options.maxInspectBytes,
    links,
    onClosed: (s) => streams.delete(s),
    trackFinish: (work) => {
      finishing++;
      work.then(finished, finished);
    },
  };
  const health = new HealthService([EXT_PROC_SERVICE]);
  health.register(server);
  server.addService(service, {
    Process: (call: ServerDuplexStream<PbProcessingRequest, PbProcessingResponse>) => {
      streams.add(new ProcessStream(call, deps));
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });

  return {
    port,
    health,
    get activeStreams() {
      return streams.size;
    },
    get pendingFinishes() {
      return finishing;
    },
    async shutdown(graceMs: number) {
      const deadlineAt = Date.now() + graceMs;
      health.setAll('NOT_SERVING');
      health.closeWatchers();
      const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), graceMs)));
      const result = await Promise.race([drained.then(() => 'drained' as const), deadline]);
      clearTimeout(timer);
      if (result === 'deadline') {
        log.warn('shutdown deadline reached; cancelling streams in flight', { streams: streams.size });
        for (const s of [...streams]) s.cancel();
        server.forceShutdown();
      }
      links.flush();
      // Usage records and limit settlements must survive a rolling update: wait for finish hooks
      // within what is left of the grace period (at least a second, for hooks of cancelled streams).
      if (finishing > 0) {
        const left = Math.max(1000, deadlineAt - Date.now());
        let finishTimer: NodeJS.Timeout | undefined;
        const finishDeadline = new Promise<'deadline'>((resolve) => (finishTimer = setTimeout(() => resolve('deadline'), left)));
        const done = new Promise<'done'>((resolve) => (allFinished = () => resolve('done')));
        const outcome = await Promise.race([done, finishDeadline]);
        clearTimeout(finishTimer);
        if (outcome === 'deadline') log.error('shutdown: finish hooks still running at the deadline', { pending: finishing });
      }
    },
  };
}
