/**
 * The Envoy stand-in: an HTTP/1.1 listener (node:http) that behaves like Envoy's HTTP connection
 * manager with the ext_proc filter(s) and the router, configured from a real Envoy bootstrap YAML.
 *
 *   const envoy = await startStandin({
 *     envoyYamlPath: 'envoy/envoy.yaml',
 *     extProcAddress: `127.0.0.1:${grpcPort}`,
 *     clusterEndpoints: { openai: upstreamUrl, llm_chain: [[urlA], [urlB], [urlC]] },
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
  /** Listener bind address (default 127.0.0.1, port 0 = ephemeral). */
  host?: string;
  port?: number;
}

export interface Standin {
  url: string;
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

/**
 * ConnectionManagerUtility::mutateRequestHeaders, before route selection and the filters:
 * hop-by-hop headers and a client's x-envoy-internal go; since use_remote_address is not set no
 * request is "internal", so cleanInternalHeaders always runs (facts §3.3); x-forwarded-proto and
 * x-request-id are added when missing.
 *
 * Internal means `allow_trusted_address_checks && isInternalAddress(final_remote_address)`, and
 * allow_trusted_address_checks is only set with use_remote_address (or an original-IP detection
 * extension); the stand-in refuses both, so every request is external. cleanInternalHeaders
 * (conn_manager_utility.cc) then also removes each of the route config's internal_only_headers:
 * `for (const LowerCaseString& header : internal_only_headers) request_headers.remove(header);`
 * (route.proto RouteConfiguration.internal_only_headers: "If they are found on external requests
 * they will be cleaned prior to filter invocation"). A filter (ext_proc) can still set them.
 */
function mutateRequestHeaders(h: HeaderMap, hcm: HcmConfig): void {
  for (const n of [...HOP_BY_HOP, 'x-envoy-internal', ...INTERNAL_HEADERS, ...hcm.internalOnlyHeaders]) h.remove(n);
  if (!h.has('x-forwarded-proto')) h.set('x-forwarded-proto', 'http');
  if (hcm.generateRequestId && !h.has('x-request-id')) h.set('x-request-id', crypto.randomUUID());
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
    mutateRequestHeaders(h, listener.hcm);
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
          new RouterFilter(cb, { clusters: config.clusters, resources, clients, stats, rng, backOffScale: opts.backOffScale ?? 1 }, f.suppressEnvoyHeaders);
      }
      throw new Error(`stand-in: unexpected HCM filter ${f.type}`);
    });

    const fm: FilterManager = new FilterManager({
      streamInfo: si,
      stats,
      isUpstream: false,
      bufferLimit: listener.bufferLimitBytes,
      routes,
      factories,
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

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
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
