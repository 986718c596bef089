/**
 * Listener → HTTP connection manager → access logs, route configuration, virtual hosts, routes.
 */
import { UnsupportedConfigError } from '../errors.js';
import { compileFormat, type FormatTemplate } from '../formatter.js';
import { parseHttpFilter } from './httpFilters.js';
import { parseLocalReplyConfig } from './localReply.js';
import type {
  AccessLogConfig,
  HcmConfig,
  HeaderMatcherConfig,
  InternalAddressConfig,
  ListenerConfig,
  RouteConfig,
  VirtualHostConfig,
} from './model.js';
import { DEFAULT_BUFFER_LIMIT, parseSocketAddress, type Reader } from './reader.js';
import { parseRetryPolicy } from './retryPolicy.js';

export function parseListener(r: Reader): ListenerConfig {
  const name = r.reqStr('name');
  const addr = r.child('address');
  if (!addr) throw new UnsupportedConfigError(`${r.at('address')}: required`);
  const { host, port } = parseSocketAddress(addr);
  const bufferLimitBytes = r.num('per_connection_buffer_limit_bytes') ?? DEFAULT_BUFFER_LIMIT;
  const chains = r.children('filter_chains');
  if (chains.length !== 1) throw new UnsupportedConfigError(`${r.at('filter_chains')}: exactly one filter chain is supported`);
  const chain = chains[0]!;
  const filters = chain.children('filters');
  if (filters.length !== 1) throw new UnsupportedConfigError(`${chain.at('filters')}: exactly one network filter (the HCM) is supported`);
  const f = filters[0]!;
  if (f.reqStr('name') !== 'envoy.filters.network.http_connection_manager') {
    throw new UnsupportedConfigError(`${f.at('name')}: only envoy.filters.network.http_connection_manager is supported`);
  }
  const hcm = parseHcm(
    f.typed('typed_config', 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
  );
  f.done();
  chain.done();
  r.done();
  return { name, host, port, bufferLimitBytes, hcm };
}

function parseHcm(r: Reader): HcmConfig {
  r.ignore('stat_prefix', 'stats are counted in Standin.stats without Envoy stat names');
  // The stand-in listener speaks HTTP/1.1 only; with AUTO an HTTP/2 client (prior knowledge) is
  // refused with a clear message (standin.ts).
  r.enumOf('codec_type', ['AUTO', 'HTTP1'] as const, 'AUTO');
  const generateRequestId = r.bool('generate_request_id', true);
  const preserveExternalRequestId = r.bool('preserve_external_request_id', false);
  const useRemoteAddress = r.bool('use_remote_address');
  const xffNumTrustedHops = r.num('xff_num_trusted_hops') ?? 0;
  if (!Number.isInteger(xffNumTrustedHops) || xffNumTrustedHops < 0) throw new UnsupportedConfigError(`${r.at('xff_num_trusted_hops')}: expected a uint32`);
  const iac = r.child('internal_address_config');
  let internalAddressConfig: InternalAddressConfig | undefined;
  if (iac) {
    internalAddressConfig = {
      unixSockets: iac.bool('unix_sockets'),
      cidrRanges: iac.children('cidr_ranges').map((c) => {
        const prefix = c.reqStr('address_prefix');
        const len = c.num('prefix_len') ?? 0;
        if (!/^\d+\.\d+\.\d+\.\d+$/.test(prefix) || len < 0 || len > 32) throw new UnsupportedConfigError(`${c.path}: only IPv4 CIDR ranges are supported`);
        c.done();
        return { prefix, len };
      }),
    };
    iac.done();
  }
  const lrc = r.child('local_reply_config');
  const localReply = lrc ? parseLocalReplyConfig(lrc) : undefined;
  const accessLogs = r.children('access_log').map(parseAccessLog);
  const rc = r.child('route_config');
  if (!rc) throw new UnsupportedConfigError(`${r.at('route_config')}: required (rds is not supported)`);
  const routeConfigName = rc.str('name') ?? '';
  const virtualHosts = rc.children('virtual_hosts').map(parseVirtualHost);
  // route.proto RouteConfiguration.internal_only_headers: "If they are found on external requests
  // they will be cleaned prior to filter invocation" (applied in standin.ts mutateRequestHeaders).
  const internalOnlyHeaders = rc.strings('internal_only_headers').map((h, i) => {
    // PGV: well_known_regex HTTP_HEADER_NAME (strict: false).
    if (!/^[^\0\r\n]+$/.test(h)) throw new UnsupportedConfigError(`${rc.at('internal_only_headers')}[${i}]: invalid header name`);
    return h.toLowerCase();
  });
  rc.done();
  const httpFilters = r.children('http_filters').map((f) => parseHttpFilter(f, false));
  if (httpFilters.length === 0 || httpFilters[httpFilters.length - 1]!.type !== 'router') {
    throw new UnsupportedConfigError(`${r.at('http_filters')}: the last filter must be envoy.filters.http.router`);
  }
  if (httpFilters.slice(0, -1).some((f) => f.type !== 'ext_proc')) {
    throw new UnsupportedConfigError(`${r.at('http_filters')}: only ext_proc filters followed by the router are supported`);
  }
  r.done();
  return {
    routeConfigName,
    virtualHosts,
    internalOnlyHeaders,
    httpFilters,
    accessLogs,
    generateRequestId,
    preserveExternalRequestId,
    useRemoteAddress,
    xffNumTrustedHops,
    internalAddressConfig,
    localReply,
  };
}

function parseAccessLog(r: Reader): AccessLogConfig {
  const name = r.reqStr('name');
  if (name !== 'envoy.access_loggers.stdout') throw new UnsupportedConfigError(`${r.at('name')}: only envoy.access_loggers.stdout is supported`);
  // The stand-in records entries in Standin.stats.accessLog instead of printing them.
  const t = r.typed('typed_config', 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog');
  const lf = t.child('log_format');
  if (!lf) throw new UnsupportedConfigError(`${t.at('log_format')}: required`);
  const jf = lf.child('json_format');
  if (!jf) throw new UnsupportedConfigError(`${lf.at('json_format')}: required (only json_format is supported)`);
  const jsonFormat: [string, FormatTemplate][] = [];
  for (const k of Object.keys(jf.obj)) {
    const v = jf.str(k);
    if (v === undefined) continue;
    jsonFormat.push([k, compileFormat(v, jf.at(k))]);
  }
  jf.done();
  lf.done();
  t.done();
  r.done();
  return { jsonFormat };
}

function parseVirtualHost(r: Reader): VirtualHostConfig {
  const name = r.reqStr('name');
  const domains = r.strings('domains');
  const includeRequestAttemptCount = r.bool('include_request_attempt_count');
  const rp = r.child('retry_policy');
  const retryPolicy = rp ? parseRetryPolicy(rp) : undefined;
  const routes = r.children('routes').map(parseRoute);
  r.done();
  return { name, domains, routes, includeRequestAttemptCount, retryPolicy };
}

const CLUSTER_NOT_FOUND_CODES = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 } as const;

function parseRoute(r: Reader): RouteConfig {
  const name = r.str('name') ?? '';
  const m = r.child('match');
  if (!m) throw new UnsupportedConfigError(`${r.at('match')}: required`);
  const prefix = m.str('prefix');
  const path = m.str('path');
  if (prefix === undefined && path === undefined) throw new UnsupportedConfigError(`${m.path}: prefix or path is required`);
  const headers = m.children('headers').map((h): HeaderMatcherConfig => {
    const hn = h.reqStr('name').toLowerCase();
    const present = h.has('present_match') ? h.bool('present_match') : undefined;
    let exact: string | undefined;
    let pfx: string | undefined;
    const sm = h.child('string_match');
    if (sm) {
      exact = sm.str('exact');
      pfx = sm.str('prefix');
      sm.done();
    }
    if (present === undefined && exact === undefined && pfx === undefined) {
      throw new UnsupportedConfigError(`${h.path}: present_match or string_match {exact|prefix} is required`);
    }
    h.done();
    return { name: hn, present, exact, prefix: pfx };
  });
  m.done();
  const a = r.child('route');
  if (!a) throw new UnsupportedConfigError(`${r.at('route')}: required (only route actions are supported)`);
  const cluster = a.str('cluster');
  const clusterHeader = a.str('cluster_header')?.toLowerCase();
  if ((cluster === undefined) === (clusterHeader === undefined)) {
    throw new UnsupportedConfigError(`${a.path}: exactly one of cluster or cluster_header is required`);
  }
  const cnf = a.enumOf('cluster_not_found_response_code', Object.keys(CLUSTER_NOT_FOUND_CODES) as (keyof typeof CLUSTER_NOT_FOUND_CODES)[], 'SERVICE_UNAVAILABLE');
  // route_components.proto RouteAction.timeout: default 15 s, 0 disables (facts §3.4).
  const timeoutMs = a.durationMs('timeout') ?? 15000;
  const rp = a.child('retry_policy');
  const retryPolicy = rp ? parseRetryPolicy(rp) : undefined;
  const autoHostRewrite = a.bool('auto_host_rewrite');
  a.done();
  const requestHeadersToRemove = r.strings('request_headers_to_remove').map((s) => s.toLowerCase());
  r.done();
  return {
    name,
    prefix,
    path,
    headers,
    cluster,
    clusterHeader,
    clusterNotFoundCode: CLUSTER_NOT_FOUND_CODES[cnf],
    timeoutMs,
    retryPolicy,
    autoHostRewrite,
    requestHeadersToRemove,
  };
}
