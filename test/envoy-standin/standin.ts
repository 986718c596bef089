/**
 * The Envoy stand-in: an HTTP/1.1 listener (node:http) that behaves like Envoy's HTTP connection
 * manager with the ext_proc filter(s) and the router, configured from a real Envoy bootstrap YAML.
 *
 *   const envoy = await startStandin({
 *     envoyYamlPath: 'envoy/envoy.yaml',
 *     extProcAddress: `127.0.0.1:${grpcPort}`,
 *     clusterEndpoints: { openai: upstreamUrl, llm_chain: [[urlA], [urlB], [urlC], [urlC]] },
 *     seed: 1,
 *   });
 *   await fetch(`${envoy.url}/v1/chat/completions`, ...);
 *   envoy.stats.counter('ext_proc.spurious_msgs_received'); envoy.stats.accessLog;
 *   await envoy.close();
 *
 * See test/envoy-standin/README.md for what is and is not implemented.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BodyChunkFeeder, Chunker, Prng } from './chunker.js';
import {
  applyEndpointOverrides,
  loadBootstrapFile,
  parseBootstrap,
  parseHostPort,
  type BootstrapConfig,
  type HcmConfig,
} from './config/index.js';
import YAML from 'yaml';
import { ExtProcClients } from './extProcClient.js';
import { ExtProcFilter } from './extProcFilter.js';
import { FilterManager, StreamInfo, type FilterFactory, type RouteProvider } from './filterManager.js';
import { HeaderMap } from './headers.js';
import type { JsonValue } from './proto.js';
import type { ClusterResources } from './retry.js';
import { RouteTable, RouterFilter, type ResolvedRoute } from './router.js';
import { StandinStats } from './stats.js';
import { formatContextOf } from './upstream.js';
import { PINNED_ENVOY_VERSION, type EnvoyVersion } from './version.js';

export interface StandinOptions {
  /** An Envoy bootstrap file, e.g. the shipped envoy/envoy.yaml. */
  envoyYamlPath?: string;
  /** ...or its text... */
  envoyYaml?: string;
  /** ...or an already parsed document (e.g. the shipped YAML, modified by a test). */
  bootstrap?: unknown;
  /** host:port of the ext_proc server; replaces the endpoint of every cluster named in an ext_proc grpc_service. */
  extProcAddress?: string;
  /**
   * Replaces endpoint addresses: cluster → URL, or per priority a list of URLs (the YAML's shape,
   * metadata and hostnames are kept). Clusters with TLS must be overridden to be reachable.
   */
  clusterEndpoints?: Record<string, string | string[][]>;
  /** Seed of the chunk-boundary and retry-jitter PRNG (default 1). */
  seed?: number;
  /** Multiplier of retry back-off sleeps (default 1; tests use e.g. 0.01). */
  backOffScale?: number;
  /**
   * The Envoy release line to behave like where releases differ (version.ts); default: the one
   * docker-compose.yml pins.
   */
  envoyVersion?: EnvoyVersion;
  /** Listener bind address (default 127.0.0.1, port 0 = ephemeral). */
  host?: string;
  port?: number;
}

export interface Standin {
  url: string;
  envoyVersion: EnvoyVersion;
  port: number;
  stats: StandinStats;
  config: BootstrapConfig;
  close(): Promise<void>;
}

/** conn_manager_utility.cc cleanInternalHeaders: stripped from every request not deemed internal. */
const INTERNAL_HEADERS = [
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace',
  'x-envoy-ip-tags',
  'x-envoy-original-url',
  'x-envoy-hedge-on-per-try-timeout',
];
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

/** Network::Utility::isInternalAddress of the HCM's InternalAddressConfig (IPv4 CIDR ranges). */
function isInternalAddress(ip: string | undefined, cfg: HcmConfig['internalAddressConfig']): boolean {
  // createInternalAddressConfig (http_connection_manager/config.cc): without internal_address_config
  // the default config trusts no IP address (explicit_internal_address_config, the only
  // behaviour since that guard was removed in 1.36.0; before 1.33 RFC 1918 ranges were internal).
  if (!cfg || ip === undefined) return false;
  const n = ipv4ToInt(ip);
  if (n === undefined) return false;
  return cfg.cidrRanges.some((r) => {
    const p = ipv4ToInt(r.prefix)!;
    const mask = r.len === 0 ? 0 : (~0 << (32 - r.len)) >>> 0;
    return (n & mask) >>> 0 === (p & mask) >>> 0;
  });
}

function ipv4ToInt(ip: string): number | undefined {
  const v = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((x) => x > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/**
 * Utility::getLastAddressFromXFF (source/common/http/utility.cc): the address `numToSkip` entries
 * from the right of x-forwarded-for, if it parses as an IP; `single` when XFF holds one address.
 */
function lastAddressFromXff(h: HeaderMap, numToSkip: number): { address?: string; single: boolean } {
  const xff = h.getAll('x-forwarded-for').join(',');
  if (xff === '') return { single: false };
  const parts = xff.split(',').map((p) => p.trim());
  if (numToSkip >= parts.length) return { single: false };
  const candidate = parts[parts.length - 1 - numToSkip]!;
  const ok = ipv4ToInt(candidate) !== undefined || /^[0-9a-f:]+$/i.test(candidate);
  return { address: ok ? candidate : undefined, single: parts.length === 1 };
}

/**
 * ConnectionManagerUtility::mutateRequestHeaders (source/common/http/conn_manager_utility.cc),
 * before route selection and the filters:
 *
 * - hop-by-hop headers and a client's x-envoy-internal go;
 * - use_remote_address: the trusted client address is the connection's peer (or, with
 *   xff_num_trusted_hops N > 0, the Nth address from the right of XFF); the peer is appended to
 *   XFF (the listener's own address for a loopback peer); x-forwarded-proto is overwritten; the
 *   request is internal only if XFF was absent before appending and the address is internal;
 * - without use_remote_address (the "XFF fallback"): the address N+0 from the right of XFF is
 *   used, and the request is internal if XFF held exactly one address and it is internal — so a
 *   client could claim to be internal by sending one internal-looking XFF address, were any
 *   address internal;
 * - internal requests get x-envoy-internal: true; every other request has the x-envoy control
 *   headers and the route config's internal_only_headers removed (cleanInternalHeaders), and an
 *   edge request (external + use_remote_address) also loses x-envoy-decorator-operation /
 *   x-envoy-downstream-service-cluster / -node and gets x-envoy-external-address;
 * - x-request-id is generated for edge requests and when missing.
 *
 * A filter (our ext_proc) can still set any of these headers afterwards.
 */
function mutateRequestHeaders(h: HeaderMap, hcm: HcmConfig, peer: string | undefined, localAddress: string): { internal: boolean; remote?: string } {
  for (const n of [...HOP_BY_HOP, 'x-envoy-internal']) h.remove(n);
  let remote: string | undefined;
  let single: boolean;
  if (hcm.useRemoteAddress) {
    single = !h.has('x-forwarded-for');
    if (hcm.xffNumTrustedHops > 0) remote = lastAddressFromXff(h, hcm.xffNumTrustedHops - 1).address;
    remote ??= peer;
    const appended = peer !== undefined && /^(::ffff:)?127\./.test(peer) ? localAddress : (peer ?? localAddress);
    const xff = h.getAll('x-forwarded-for').join(',');
    h.set('x-forwarded-for', xff === '' ? appended : `${xff},${appended}`);
    h.set('x-forwarded-proto', 'http');
  } else {
    const r = lastAddressFromXff(h, hcm.xffNumTrustedHops);
    remote = r.address;
    single = r.single;
  }
  if (!h.has('x-forwarded-proto')) h.set('x-forwarded-proto', 'http');
  const internal = single && remote !== undefined && isInternalAddress(remote, hcm.internalAddressConfig);
  remote ??= peer;
  const edge = !internal && hcm.useRemoteAddress;
  if (internal) {
    h.set('x-envoy-internal', 'true');
  } else {
    if (edge) for (const n of ['x-envoy-decorator-operation', 'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node']) h.remove(n);
    for (const n of [...INTERNAL_HEADERS, ...hcm.internalOnlyHeaders]) h.remove(n);
  }
  if (edge && remote !== undefined) h.set('x-envoy-external-address', remote.startsWith('::ffff:') ? remote.slice(7) : remote);
  // conn_manager_utility.cc mutateRequestHeaders: an edge request's id is replaced unless
  // preserve_external_request_id; a missing one is generated.
  if (hcm.generateRequestId && ((edge && !hcm.preserveExternalRequestId) || !h.has('x-request-id'))) h.set('x-request-id', crypto.randomUUID());
  return { internal, remote };
}

export async function startStandin(opts: StandinOptions): Promise<Standin> {
  const doc =
    opts.bootstrap ??
    (opts.envoyYaml !== undefined ? YAML.parse(opts.envoyYaml) : opts.envoyYamlPath ? loadBootstrapFile(opts.envoyYamlPath) : undefined);
  if (doc === undefined) throw new Error('startStandin: give envoyYamlPath, envoyYaml or bootstrap');
  const config = parseBootstrap(doc);
  if (config.listeners.length !== 1) throw new Error('stand-in: exactly one listener is supported');
  if (opts.clusterEndpoints) applyEndpointOverrides(config, opts.clusterEndpoints);
  if (opts.extProcAddress) {
    const { host, port } = parseHostPort(opts.extProcAddress);
    const grpcClusters = new Set<string>();
    for (const f of config.listeners[0]!.hcm.httpFilters) if (f.type === 'ext_proc') grpcClusters.add(f.config.grpcService.clusterName);
    for (const c of config.clusters.values())
      for (const f of c.upstreamFilters) if (f.type === 'ext_proc') grpcClusters.add(f.config.grpcService.clusterName);
    for (const name of grpcClusters) {
      for (const ep of config.clusters.get(name)!.priorities.flat()) Object.assign(ep, { host, port, overridden: true });
    }
  }

  const listener = config.listeners[0]!;
  const stats = new StandinStats();
  const clients = new ExtProcClients(config.clusters, stats);
  const resources = new Map<string, ClusterResources>();
  const routeTable = new RouteTable(listener.hcm.virtualHosts);
  const rootRng = new Prng(opts.seed ?? 1);
  const envoyVersion = opts.envoyVersion ?? PINNED_ENVOY_VERSION;
  let requestCounter = 0;

  const server = http.createServer((req, res) => {
    handleRequest(req, res, ++requestCounter);
  });

  function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, index: number): void {
    const rng = rootRng.fork(index);
    const si = new StreamInfo();
    // HTTP/1 codec: request line and Host become pseudo-headers (Host is :authority, not repeated).
    const h = HeaderMap.fromPairs([
      [':method', req.method ?? 'GET'],
      [':path', req.url ?? '/'],
      [':authority', req.headers.host ?? ''],
      [':scheme', 'http'],
    ]);
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i]!;
      if (k.toLowerCase() !== 'host') h.add(k, req.rawHeaders[i + 1]!);
    }
    const peer = mutateRequestHeaders(h, listener.hcm, req.socket.remoteAddress, req.socket.localAddress ?? '127.0.0.1');
    si.internalRequest = peer.internal;
    si.downstreamRemoteAddress = peer.remote;
    si.requestHeaders = h;

    // The HCM resolves the route when headers arrive (refreshCachedRoute); clearRouteCache makes
    // the next route() call resolve again against the then-current headers (facts §2.7).
    let cached: ResolvedRoute | null | undefined;
    const routes: RouteProvider = {
      route: () => {
        if (cached === undefined) {
          cached = routeTable.match(h);
          si.routeName = cached?.name;
        }
        return cached;
      },
      clearRouteCache: () => {
        stats.inc('route_cache_cleared');
        cached = undefined;
      },
    };
    routes.route();

    let finalized = false;
    const finalize = () => {
      if (finalized) return;
      finalized = true;
      fm.destroy();
      const fc = formatContextOf(si, h, si.responseHeaders);
      const log = listener.hcm.accessLogs.map((al) => {
        const entry: Record<string, JsonValue> = {};
        for (const [k, t] of al.jsonFormat) entry[k] = t.render(fc, 'json');
        return entry;
      });
      stats.recordRequest(
        {
          method: h.get(':method'),
          path: h.get(':path'),
          routeName: si.routeName,
          responseCode: si.responseCode,
          responseCodeDetails: si.responseCodeDetails,
          upstreamCluster: si.upstreamCluster,
          upstreamHosts: si.upstreamHostsAttempted,
          attemptCount: si.attemptCount,
          dynamicMetadata: structuredClone(si.dynamicMetadata),
          durationMs: Date.now() - si.startTime,
        },
        log,
      );
    };

    const factories: FilterFactory[] = listener.hcm.httpFilters.map((f): FilterFactory => {
      if (f.type === 'ext_proc') return (cb) => new ExtProcFilter(cb, f.config, clients);
      if (f.type === 'router') {
        return (cb) =>
          new RouterFilter(cb, { clusters: config.clusters, resources, clients, stats, rng, backOffScale: opts.backOffScale ?? 1, envoyVersion }, f.suppressEnvoyHeaders);
      }
      throw new Error(`stand-in: unexpected HCM filter ${f.type}`);
    });

    const fm: FilterManager = new FilterManager({
      streamInfo: si,
      stats,
      isUpstream: false,
      bufferLimit: listener.bufferLimitBytes,
      envoyVersion,
      routes,
      factories,
      localReply: listener.hcm.localReply,
      formatContext: () => formatContextOf(si, h, si.responseHeaders),
      sink: {
        headers: (rh, eos) => {
          const status = Number(rh.get(':status'));
          const flat: string[] = [];
          for (const [k, v] of rh.regularPairs()) if (!HOP_BY_HOP.includes(k) && k !== 'server') flat.push(k, v);
          // mutateResponseHeaders (after the filters): server_header_transformation OVERWRITE.
          flat.push('server', 'envoy');
          res.writeHead(status, flat as unknown as http.OutgoingHttpHeaders);
          if (eos) {
            res.end();
            finalize();
          } else {
            // Streamed responses are not buffered: headers, then every chunk, go out at once.
            res.flushHeaders();
          }
        },
        data: (d, eos) => {
          if (d.length > 0) res.write(d);
          if (eos) {
            res.end();
            finalize();
          }
        },
        reset: () => {
          res.destroy();
          finalize();
        },
      },
    });

    res.on('close', () => {
      // Client went away (or the response finished): the stream ends, filters are destroyed.
      finalize();
    });

    const cl = req.headers['content-length'];
    const hasBody = (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
    fm.decodeHeaders(h, !hasBody);
    if (!hasBody) {
      req.resume();
      return;
    }
    const feeder = new BodyChunkFeeder(new Chunker(rng.fork(0)), cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined, (p, e) =>
      fm.decodeData(p, e),
    );
    req.on('data', (d: Buffer) => feeder.push(d));
    req.on('end', () => feeder.end());
  }

  // The listener's codec_type AUTO would let real Envoy speak HTTP/2 (prior knowledge or ALPN);
  // the stand-in speaks HTTP/1.1 only and says so, rather than failing with a parser error.
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
    const h2 = err.rawPacket?.subarray(0, 14).toString('latin1') === 'PRI * HTTP/2.0';
    const msg = h2
      ? 'stand-in: HTTP/2 clients are not supported (the stand-in listener speaks HTTP/1.1 only; Envoy with codec_type AUTO would accept HTTP/2)'
      : `stand-in: malformed HTTP/1.1 request (${err.code ?? err.message})`;
    stats.errors.push(msg);
    if (socket.writable) {
      const body = `${msg}\n`;
      socket.end(`HTTP/1.1 ${h2 ? '505 HTTP Version Not Supported' : '400 Bad Request'}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    } else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    envoyVersion,
    stats,
    config,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      clients.close();
    },
  };
}
