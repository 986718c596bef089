/**
 * The gRPC side stream to the external processor, as Envoy's ext_proc client_impl.cc opens it:
 * one bidi `Process` stream per filter instance, `:authority` = the cluster name (or
 * EnvoyGrpc.authority), GrpcService.initial_metadata as stream metadata, no message size limit
 * (EnvoyGrpc max_receive_message_length default 0 = unlimited, facts §2.12). Closing is
 * `closeStream()` (half-close) followed by `resetStream()` — the server sees CANCELLED (facts §2.1).
 *
 * One grpc-js channel per (cluster, authority), with the cluster's HTTP/2 keepalive; the cluster's
 * circuit breaker (max_requests) bounds concurrent streams: an overflow fails the stream at start.
 *
 * Each channel is one HTTP/2 connection ('grpc.use_local_subchannel_pool', so channels do not share
 * a subchannel). With `common_http_protocol_options.max_requests_per_connection` N the connection
 * pool does what source/common/conn_pool/conn_pool_base.cc does: ConnPoolImplBase::
 * attachStreamToClient decrements the client's remaining_streams_ and at 0 ("maximum streams per
 * connection, start draining") counts upstream_cx_max_requests and moves the client to Draining —
 * later streams go to a new connection; onStreamClosed closes a Draining client once its last
 * stream is gone. (Envoy's pool is per cluster host; the stand-in keeps one per authority as well,
 * which is the same for the shipped config, where every filter uses the default authority.)
 */
import * as grpc from '@grpc/grpc-js';
import type { ClusterConfig, GrpcServiceConfig } from './config/index.js';
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

/** One HTTP/2 connection (a grpc-js channel with its own subchannel) of a pool. */
interface PooledConnection {
  readonly client: grpc.Client;
  /** Streams it may still carry (Infinity without max_requests_per_connection). */
  remaining: number;
  active: number;
  draining: boolean;
  closed: boolean;
}

export class ExtProcClients {
  /** The connection new streams go to, per (cluster, authority). */
  private readonly current = new Map<string, PooledConnection>();
  /** Every connection not yet closed (current and draining). */
  private readonly open = new Set<PooledConnection>();
  private readonly active = new Map<string, number>();

  constructor(
    private readonly clusters: Map<string, ClusterConfig>,
    private readonly stats: StandinStats,
  ) {}

  /** A connection with room for one more stream (a new one when the current one drains). */
  private connectionFor(svc: GrpcServiceConfig): PooledConnection {
    const key = `${svc.clusterName}\u0000${svc.authority}`;
    let c = this.current.get(key);
    if (!c || c.draining) {
      const cluster = this.clusters.get(svc.clusterName)!;
      const limit = cluster.maxRequestsPerConnection;
      c = { client: this.newClient(svc), remaining: limit > 0 ? limit : Infinity, active: 0, draining: false, closed: false };
      this.current.set(key, c);
      this.open.add(c);
      this.stats.inc(`cluster.${svc.clusterName}.upstream_cx_total`);
    }
    return c;
  }

  private newClient(svc: GrpcServiceConfig): grpc.Client {
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
      // A channel of its own per connection: with the global pool, channels with the same target
      // and options share one subchannel, i.e. one HTTP/2 connection.
      'grpc.use_local_subchannel_pool': 1,
    };
    if (cluster.http2KeepaliveIntervalMs) options['grpc.keepalive_time_ms'] = cluster.http2KeepaliveIntervalMs;
    if (cluster.http2KeepaliveTimeoutMs) options['grpc.keepalive_timeout_ms'] = cluster.http2KeepaliveTimeoutMs;
    const Ctor = extProcClientConstructor();
    return new Ctor(`${host}:${ep.port}`, grpc.credentials.createInsecure(), options);
  }

  /** ConnPoolImplBase::onStreamClosed: a draining connection closes with its last stream. */
  private streamClosed(c: PooledConnection, clusterName: string): void {
    c.active--;
    if (c.draining && c.active === 0 && !c.closed) {
      c.closed = true;
      this.open.delete(c);
      this.stats.inc(`cluster.${clusterName}.upstream_cx_destroy_local`);
      // After the cancel above was written: grpc-js closes the session gracefully.
      setImmediate(() => c.client.close());
    }
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
    const conn = this.connectionFor(svc);
    // ConnPoolImplBase::attachStreamToClient.
    conn.remaining--;
    conn.active++;
    if (conn.remaining === 0) {
      this.stats.inc(`cluster.${svc.clusterName}.upstream_cx_max_requests`);
      conn.draining = true;
    }
    const client = conn.client as unknown as { Process: ProcessFn };
    const call = client.Process(md, opts);
    let closed = false;
    const release = () => {
      if (closed) return;
      closed = true;
      this.active.set(svc.clusterName, (this.active.get(svc.clusterName) ?? 1) - 1);
      this.streamClosed(conn, svc.clusterName);
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
    for (const c of this.open) c.client.close();
    this.open.clear();
    this.current.clear();
  }
}
