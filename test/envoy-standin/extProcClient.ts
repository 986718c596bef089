/**
 * The gRPC side stream to the external processor, as Envoy's ext_proc client_impl.cc opens it:
 * one bidi `Process` stream per filter instance, `:authority` = the cluster name (or
 * EnvoyGrpc.authority), GrpcService.initial_metadata as stream metadata, no message size limit
 * (EnvoyGrpc max_receive_message_length default 0 = unlimited, facts §2.12). Closing is
 * `closeStream()` (half-close) followed by `resetStream()` — the server sees CANCELLED (facts §2.1).
 *
 * One grpc-js channel per (cluster, authority), with the cluster's HTTP/2 keepalive; the cluster's
 * circuit breaker (max_requests) bounds concurrent streams: an overflow fails the stream at start.
 */
import * as grpc from '@grpc/grpc-js';
import type { ClusterConfig, GrpcServiceConfig } from './config.js';
import { extProcClientConstructor, type ProcessingRequest, type ProcessingResponse } from './proto.js';
import type { StandinStats } from './stats.js';

export interface SideStreamHandlers {
  onMessage(resp: ProcessingResponse): void;
  /** Stream ended with a non-OK status (Filter::onGrpcError). */
  onError(code: number, message: string): void;
  /** Stream ended by the server with OK (Filter::onGrpcClose). */
  onClose(): void;
}

export interface SideStream {
  send(req: ProcessingRequest): void;
  /** Half-close, then cancel. Idempotent; no handler fires afterwards. */
  close(): void;
}

type ProcessFn = (md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;

export class ExtProcClients {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly active = new Map<string, number>();

  constructor(
    private readonly clusters: Map<string, ClusterConfig>,
    private readonly stats: StandinStats,
  ) {}

  private clientFor(svc: GrpcServiceConfig): grpc.Client {
    const key = `${svc.clusterName}\u0000${svc.authority}`;
    let c = this.clients.get(key);
    if (!c) {
      const cluster = this.clusters.get(svc.clusterName)!;
      const ep = cluster.priorities[0]?.[0];
      if (!ep) throw new Error(`stand-in: cluster ${svc.clusterName} has no endpoint`);
      const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
      const options: grpc.ChannelOptions = {
        'grpc.default_authority': svc.authority,
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
      };
      if (cluster.http2KeepaliveIntervalMs) options['grpc.keepalive_time_ms'] = cluster.http2KeepaliveIntervalMs;
      if (cluster.http2KeepaliveTimeoutMs) options['grpc.keepalive_timeout_ms'] = cluster.http2KeepaliveTimeoutMs;
      const Ctor = extProcClientConstructor();
      c = new Ctor(`${host}:${ep.port}`, grpc.credentials.createInsecure(), options);
      this.clients.set(key, c);
    }
    return c;
  }

  /** Opens a stream, or returns an error status when the cluster's circuit breaker overflows. */
  start(svc: GrpcServiceConfig, h: SideStreamHandlers): SideStream | { code: number; message: string } {
    const cluster = this.clusters.get(svc.clusterName)!;
    const n = this.active.get(svc.clusterName) ?? 0;
    if (n >= cluster.maxRequests) {
      this.stats.inc(`cluster.${svc.clusterName}.upstream_rq_pending_overflow`);
      return { code: grpc.status.UNAVAILABLE, message: 'overflow' };
    }
    this.active.set(svc.clusterName, n + 1);
    const md = new grpc.Metadata();
    for (const [k, v] of svc.initialMetadata) md.add(k, v);
    const opts: grpc.CallOptions = {};
    if (svc.timeoutMs) opts.deadline = Date.now() + svc.timeoutMs;
    const client = this.clientFor(svc) as unknown as { Process: ProcessFn };
    const call = client.Process(md, opts);
    let closed = false;
    const release = () => {
      if (closed) return;
      closed = true;
      this.active.set(svc.clusterName, (this.active.get(svc.clusterName) ?? 1) - 1);
    };
    call.on('data', (resp: ProcessingResponse) => {
      if (!closed) h.onMessage(resp);
    });
    call.on('error', () => {
      /* reported through 'status' */
    });
    call.on('status', (s: grpc.StatusObject) => {
      // Let already-received messages be delivered first.
      setImmediate(() => {
        if (closed) return;
        release();
        if (s.code === grpc.status.OK) h.onClose();
        else h.onError(s.code, s.details);
      });
    });
    return {
      send: (req) => {
        if (!closed) call.write(req);
      },
      close: () => {
        if (closed) return;
        release();
        call.end();
        call.cancel();
      },
    };
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
