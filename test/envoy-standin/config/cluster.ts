/**
 * Clusters: circuit breakers, HttpProtocolOptions (protocol, keepalive, upstream HTTP filters),
 * load_assignment endpoints by priority, transport socket.
 */
import type { JsonObject } from '../proto.js';
import { UnsupportedConfigError } from '../errors.js';
import { parseHttpFilter } from './httpFilters.js';
import type { ClusterConfig, EndpointConfig, HttpFilterConfig } from './model.js';
import { DEFAULT_BUFFER_LIMIT, isObj, parseSocketAddress, type Reader } from './reader.js';

export function parseCluster(r: Reader): ClusterConfig {
  const name = r.reqStr('name');
  // Names resolve at connect time (node's resolver).
  const type = r.enumOf('type', ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS'] as const, 'STATIC');
  const connectTimeoutMs = r.durationMs('connect_timeout') ?? 5000; // cluster.proto default 5 s
  const fam = r.enumOf('dns_lookup_family', ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'] as const, 'AUTO');
  const ipFamily = fam === 'V4_ONLY' ? 4 : fam === 'V6_ONLY' ? 6 : undefined;
  r.enumOf('lb_policy', ['ROUND_ROBIN'] as const, 'ROUND_ROBIN');
  const bufferLimitBytes = r.num('per_connection_buffer_limit_bytes') ?? DEFAULT_BUFFER_LIMIT;

  // circuit_breakers.proto defaults: max_connections/max_pending_requests/max_requests 1024, max_retries 3.
  let maxRequests = 1024;
  let maxRetries = 3;
  const cb = r.child('circuit_breakers');
  if (cb) {
    const th = cb.children('thresholds');
    if (th.length > 1) throw new UnsupportedConfigError(`${cb.at('thresholds')}: only one (DEFAULT priority) threshold is supported`);
    for (const t of th) {
      t.enumOf('priority', ['DEFAULT'] as const, 'DEFAULT');
      const mr = t.num('max_requests') ?? 1024;
      const mc = t.num('max_connections') ?? 1024;
      const mp = t.num('max_pending_requests') ?? 1024;
      // The stand-in opens one connection per upstream request (no HTTP/1 pool), so the pool
      // limits collapse into one bound on concurrent requests.
      maxRequests = Math.min(mr, mc + mp);
      maxRetries = t.num('max_retries') ?? 3;
      t.done();
    }
    cb.done();
  }

  let protocol: 'http1' | 'http2' = 'http1';
  let http2KeepaliveIntervalMs: number | undefined;
  let http2KeepaliveTimeoutMs: number | undefined;
  let maxRequestsPerConnection = 0;
  let upstreamFilters: HttpFilterConfig[] = [];
  const teo = r.child('typed_extension_protocol_options');
  if (teo) {
    const key = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
    const po = teo.typed(key, key);
    const common = po.child('common_http_protocol_options');
    if (common) {
      // protocol.proto HttpProtocolOptions.max_requests_per_connection (UInt32Value): "Optional
      // maximum requests for both upstream and downstream connections. If not specified, there is
      // no limit." Applied by extProcClient.ts to gRPC clusters; upstream HTTP/1 requests already
      // get one connection each in the stand-in (upstream.ts, agent: false), within any limit.
      const n = common.num('max_requests_per_connection');
      if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > 0xffffffff)) {
        throw new UnsupportedConfigError(`${common.at('max_requests_per_connection')}: expected a uint32`);
      }
      maxRequestsPerConnection = n ?? 0;
      common.done();
    }
    const ehc = po.child('explicit_http_config');
    if (!ehc) throw new UnsupportedConfigError(`${po.at('explicit_http_config')}: required (auto_config/use_downstream_protocol_config are not supported)`);
    const h1 = ehc.child('http_protocol_options');
    const h2 = ehc.child('http2_protocol_options');
    if (h1) h1.done(); // no HTTP/1 codec options are implemented
    if (h2) {
      protocol = 'http2';
      const ka = h2.child('connection_keepalive');
      if (ka) {
        http2KeepaliveIntervalMs = ka.durationMs('interval');
        http2KeepaliveTimeoutMs = ka.durationMs('timeout');
        ka.done();
      }
      h2.done();
    }
    ehc.done();
    const filters = po.children('http_filters').map((f) => parseHttpFilter(f, true));
    if (filters.length > 0) {
      // envoyproxy/envoy#26138: with explicit upstream filters the codec filter must be last (facts §3.4).
      if (filters[filters.length - 1]!.type !== 'upstream_codec') {
        throw new UnsupportedConfigError(`${po.at('http_filters')}: the last upstream filter must be envoy.filters.http.upstream_codec`);
      }
      upstreamFilters = filters.slice(0, -1);
      if (upstreamFilters.some((f) => f.type === 'upstream_codec')) {
        throw new UnsupportedConfigError(`${po.at('http_filters')}: upstream_codec may only appear last`);
      }
    }
    po.done();
    teo.done();
  }

  const la = r.child('load_assignment');
  if (!la) throw new UnsupportedConfigError(`${r.at('load_assignment')}: required`);
  la.str('cluster_name');
  const byPriority: EndpointConfig[][] = [];
  for (const lle of la.children('endpoints')) {
    const prio = lle.num('priority') ?? 0;
    const eps = lle.children('lb_endpoints').map((le): EndpointConfig => {
      const ep = le.child('endpoint');
      if (!ep) throw new UnsupportedConfigError(`${le.at('endpoint')}: required`);
      const addr = ep.child('address');
      if (!addr) throw new UnsupportedConfigError(`${ep.at('address')}: required`);
      const { host, port } = parseSocketAddress(addr);
      // strict_dns_cluster.cc: a DNS host's hostname() is Endpoint.hostname, else the DNS name
      // (what auto_host_rewrite uses); STATIC IP hosts have none unless configured.
      const hostname = ep.str('hostname') ?? (type === 'STATIC' ? undefined : host);
      ep.done();
      const metadata: Record<string, JsonObject> = {};
      const md = le.child('metadata');
      if (md) {
        const fm = md.raw('filter_metadata');
        if (fm !== undefined) {
          if (!isObj(fm)) throw new UnsupportedConfigError(`${md.at('filter_metadata')}: expected a mapping`);
          for (const [k, v] of Object.entries(fm)) metadata[k] = v as JsonObject;
        }
        md.done();
      }
      le.done();
      return { host, port, hostname, metadata };
    });
    lle.done();
    (byPriority[prio] ??= []).push(...eps);
  }
  la.done();
  const priorities: EndpointConfig[][] = [];
  for (let i = 0; i < byPriority.length; i++) {
    // Envoy requires priorities to be contiguous from 0.
    if (!byPriority[i]) throw new UnsupportedConfigError(`${la.path}: priority ${i} is missing (priorities must be contiguous)`);
    priorities.push(byPriority[i]!);
  }

  // Upstream TLS is accepted and not performed: tests use plain HTTP to fakes on loopback.
  const ts = r.child('transport_socket');
  let tls = false;
  if (ts) {
    if (ts.reqStr('name') !== 'envoy.transport_sockets.tls') throw new UnsupportedConfigError(`${ts.at('name')}: only envoy.transport_sockets.tls is supported`);
    ts.typed('typed_config', 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');
    tls = true;
    // The TLS context itself is not read (its fields are checked by validate-envoy-yaml).
    ts.done();
  }
  r.done();
  return {
    name,
    connectTimeoutMs,
    ipFamily,
    priorities,
    protocol,
    http2KeepaliveIntervalMs,
    http2KeepaliveTimeoutMs,
    maxRequestsPerConnection,
    upstreamFilters,
    tls,
    bufferLimitBytes,
    maxRequests,
    maxRetries,
  };
}
