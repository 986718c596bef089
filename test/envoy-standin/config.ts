/**
 * Envoy bootstrap YAML → the typed model the stand-in runs.
 *
 * Every field the stand-in reads is listed here; any other field makes `parseBootstrap` throw an
 * UnsupportedConfigError naming its path (e.g. `static_resources.clusters[1].outlier_detection`),
 * so the config we ship is exactly the config the tests exercise. A few fields are accepted
 * without effect, each with the reason next to it (`ignore(...)`): names of stats, the admin
 * interface, DNS details and TLS settings (tests talk plain HTTP to loopback fakes).
 *
 * Defaults are Envoy's, from the data-plane-api protos (see facts §1.5, §3.2).
 */
import fs from 'node:fs';
import YAML from 'yaml';
import type { JsonObject } from './proto.js';
import { compileAttribute, type AttributeExpr } from './attributes.js';
import { UnsupportedConfigError } from './errors.js';
import { compileFormat, type FormatTemplate } from './formatter.js';

export { UnsupportedConfigError };

// ---- model ---------------------------------------------------------------------------------------

export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';
export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';
export const HEADER_SEND_MODES: readonly HeaderSendMode[] = ['DEFAULT', 'SEND', 'SKIP'];
export const BODY_SEND_MODES: readonly BodySendMode[] = [
  'NONE',
  'STREAMED',
  'BUFFERED',
  'BUFFERED_PARTIAL',
  'FULL_DUPLEX_STREAMED',
  'GRPC',
];

export interface ProcessingMode {
  request_header_mode: HeaderSendMode;
  response_header_mode: HeaderSendMode;
  request_body_mode: BodySendMode;
  response_body_mode: BodySendMode;
  request_trailer_mode: HeaderSendMode;
  response_trailer_mode: HeaderSendMode;
}

export interface MutationRulesConfig {
  allow_all_routing: boolean;
  allow_envoy: boolean;
  disallow_system: boolean;
  disallow_all: boolean;
  disallow_is_error: boolean;
  allow_expression?: RegExp;
  disallow_expression?: RegExp;
}

export interface GrpcServiceConfig {
  clusterName: string;
  /** EnvoyGrpc.authority; defaults to the cluster name (facts §2.12). */
  authority: string;
  initialMetadata: [string, string][];
  /** GrpcService.timeout, applied as the stream deadline; undefined = none. */
  timeoutMs?: number;
}

export interface ExtProcConfig {
  grpcService: GrpcServiceConfig;
  failureModeAllow: boolean;
  processingMode: ProcessingMode;
  requestAttributes: AttributeExpr[];
  responseAttributes: AttributeExpr[];
  messageTimeoutMs: number;
  maxMessageTimeoutMs: number;
  mutationRules: MutationRulesConfig;
  routeCacheAction: 'DEFAULT' | 'CLEAR' | 'RETAIN';
  allowModeOverride: boolean;
  allowedOverrideModes: ProcessingMode[];
  disableImmediateResponse: boolean;
  forwardingNamespaces: string[];
  receivingNamespaces: string[];
  observabilityMode: boolean;
  deferredCloseTimeoutMs: number;
  statusOnError: number;
  /**
   * ExternalProcessor.stat_prefix: "distinguish emitted statistics between configured ext_proc
   * filters in an HTTP filter chain"; '' when unset.
   */
  statPrefix: string;
}

export interface HeaderMutationOp {
  kind: 'append' | 'remove';
  key: string;
  value?: FormatTemplate;
  appendAction: 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';
  keepEmptyValue: boolean;
}

export type HttpFilterConfig =
  | { type: 'ext_proc'; name: string; config: ExtProcConfig }
  | { type: 'router'; name: string; suppressEnvoyHeaders: boolean }
  | { type: 'header_mutation'; name: string; request: HeaderMutationOp[]; response: HeaderMutationOp[] }
  | { type: 'upstream_codec'; name: string };

export interface RetryPolicyConfig {
  retryOn: string;
  numRetries: number;
  perTryTimeoutMs: number;
  perTryIdleTimeoutMs: number;
  retriableStatusCodes: number[];
  backOffBaseMs: number;
  backOffMaxMs: number;
  previousPrioritiesUpdateFrequency?: number;
  previousHostsPredicate: boolean;
  hostSelectionRetryMaxAttempts: number;
}

export interface HeaderMatcherConfig {
  name: string;
  present?: boolean;
  exact?: string;
  prefix?: string;
}

export interface RouteConfig {
  name: string;
  prefix?: string;
  path?: string;
  headers: HeaderMatcherConfig[];
  cluster?: string;
  clusterHeader?: string;
  clusterNotFoundCode: number;
  timeoutMs: number;
  retryPolicy?: RetryPolicyConfig;
  autoHostRewrite: boolean;
  requestHeadersToRemove: string[];
}

export interface VirtualHostConfig {
  name: string;
  domains: string[];
  routes: RouteConfig[];
  includeRequestAttemptCount: boolean;
  retryPolicy?: RetryPolicyConfig;
}

export interface AccessLogConfig {
  /** Field name → compiled template (json_format). */
  jsonFormat: [string, FormatTemplate][];
}

export interface HcmConfig {
  routeConfigName: string;
  virtualHosts: VirtualHostConfig[];
  /** RouteConfiguration.internal_only_headers, lower-cased: stripped from external requests. */
  internalOnlyHeaders: string[];
  httpFilters: HttpFilterConfig[];
  accessLogs: AccessLogConfig[];
  generateRequestId: boolean;
}

export interface ListenerConfig {
  name: string;
  host: string;
  port: number;
  bufferLimitBytes: number;
  hcm: HcmConfig;
}

export interface EndpointConfig {
  host: string;
  port: number;
  /** Endpoint.hostname: used by auto_host_rewrite (and SNI in real Envoy). */
  hostname?: string;
  metadata: Record<string, JsonObject>;
  /** Set when the caller replaced the YAML address (startStandin clusterEndpoints). */
  overridden?: boolean;
}

export interface ClusterConfig {
  name: string;
  connectTimeoutMs: number;
  ipFamily?: 4 | 6;
  priorities: EndpointConfig[][];
  protocol: 'http1' | 'http2';
  http2KeepaliveIntervalMs?: number;
  http2KeepaliveTimeoutMs?: number;
  /**
   * HttpProtocolOptions.common_http_protocol_options.max_requests_per_connection; 0 = no limit
   * (the proto: "If not specified, there is no limit").
   */
  maxRequestsPerConnection: number;
  /** Upstream HTTP filters without the terminal upstream_codec. */
  upstreamFilters: HttpFilterConfig[];
  tls: boolean;
  bufferLimitBytes: number;
  maxRequests: number;
  maxRetries: number;
}

export interface BootstrapConfig {
  listeners: ListenerConfig[];
  clusters: Map<string, ClusterConfig>;
}

// ---- strict reader -------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads one YAML mapping; `done()` refuses every key that was not read. */
class Reader {
  private readonly seen = new Set<string>();
  constructor(
    readonly obj: Obj,
    readonly path: string,
  ) {}

  static of(v: unknown, path: string): Reader {
    if (!isObj(v)) throw new UnsupportedConfigError(`${path}: expected a mapping`);
    return new Reader(v, path);
  }

  at(k: string): string {
    return `${this.path}.${k}`;
  }
  has(k: string): boolean {
    return this.obj[k] !== undefined;
  }
  raw(k: string): unknown {
    this.seen.add(k);
    return this.obj[k];
  }
  /** Accepted and deliberately without effect in the stand-in; `why` documents it at the call site. */
  ignore(k: string, why: string): void {
    void why;
    this.seen.add(k);
  }
  str(k: string): string | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new UnsupportedConfigError(`${this.at(k)}: expected a string`);
    return v;
  }
  reqStr(k: string): string {
    const v = this.str(k);
    if (v === undefined || v === '') throw new UnsupportedConfigError(`${this.at(k)}: required`);
    return v;
  }
  bool(k: string, def = false): boolean {
    const v = this.raw(k);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') throw new UnsupportedConfigError(`${this.at(k)}: expected a bool`);
    return v;
  }
  num(k: string): number | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new UnsupportedConfigError(`${this.at(k)}: expected a number`);
    return n;
  }
  /** google.protobuf.Duration in proto-JSON form ("5s", "0.25s") → milliseconds. */
  durationMs(k: string): number | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^\d+(\.\d+)?s$/.test(v)) {
      throw new UnsupportedConfigError(`${this.at(k)}: expected a duration like "5s"`);
    }
    return Math.round(parseFloat(v) * 1000);
  }
  enumOf<T extends string>(k: string, allowed: readonly T[], def: T): T {
    const v = this.raw(k);
    if (v === undefined) return def;
    const s = String(v).toUpperCase() as T;
    if (!allowed.includes(s)) throw new UnsupportedConfigError(`${this.at(k)}: unsupported value ${String(v)}`);
    return s;
  }
  child(k: string): Reader | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    return Reader.of(v, this.at(k));
  }
  list(k: string): unknown[] {
    const v = this.raw(k);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new UnsupportedConfigError(`${this.at(k)}: expected a list`);
    return v;
  }
  children(k: string): Reader[] {
    return this.list(k).map((v, i) => Reader.of(v, `${this.at(k)}[${i}]`));
  }
  strings(k: string): string[] {
    return this.list(k).map((v, i) => {
      if (typeof v !== 'string') throw new UnsupportedConfigError(`${this.at(k)}[${i}]: expected a string`);
      return v;
    });
  }
  /** typed_config: checks "@type" and returns a reader over the rest. */
  typed(k: string, expectedType: string): Reader {
    const r = this.child(k);
    if (!r) throw new UnsupportedConfigError(`${this.at(k)}: required`);
    const t = r.str('@type');
    if (t !== `type.googleapis.com/${expectedType}`) {
      throw new UnsupportedConfigError(`${r.at('@type')}: expected type.googleapis.com/${expectedType}, got ${String(t)}`);
    }
    return r;
  }
  done(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k)) {
        throw new UnsupportedConfigError(`unsupported field ${this.at(k)} (not implemented by the stand-in)`);
      }
    }
  }
}

// ---- parsing -------------------------------------------------------------------------------------

const DEFAULT_BUFFER_LIMIT = 1024 * 1024; // listener.proto per_connection_buffer_limit_bytes: 1 MiB

export function loadBootstrapFile(file: string): unknown {
  return YAML.parse(fs.readFileSync(file, 'utf8'));
}

export function parseBootstrap(doc: unknown): BootstrapConfig {
  const root = Reader.of(doc, 'bootstrap');
  root.ignore('admin', 'the admin interface (stats, config dump) is not emulated; it serves no request traffic');
  const sr = root.child('static_resources');
  if (!sr) throw new UnsupportedConfigError('bootstrap.static_resources: required');
  const listeners = sr.children('listeners').map(parseListener);
  const clusters = new Map<string, ClusterConfig>();
  for (const c of sr.children('clusters')) {
    const cluster = parseCluster(c);
    if (clusters.has(cluster.name)) throw new UnsupportedConfigError(`${c.path}: duplicate cluster ${cluster.name}`);
    clusters.set(cluster.name, cluster);
  }
  sr.done();
  root.done();
  const cfg = { listeners, clusters };
  checkReferences(cfg);
  return cfg;
}

function checkReferences(cfg: BootstrapConfig): void {
  const checkGrpc = (f: HttpFilterConfig, where: string) => {
    if (f.type !== 'ext_proc') return;
    const c = cfg.clusters.get(f.config.grpcService.clusterName);
    if (!c) throw new UnsupportedConfigError(`${where}: grpc_service cluster ${f.config.grpcService.clusterName} is not defined`);
    // gRPC needs HTTP/2 to the processor (facts §2.12).
    if (c.protocol !== 'http2') {
      throw new UnsupportedConfigError(`cluster ${c.name} is used for gRPC but has no http2_protocol_options`);
    }
  };
  for (const l of cfg.listeners) {
    for (const f of l.hcm.httpFilters) checkGrpc(f, `listener ${l.name} filter ${f.name}`);
    for (const vh of l.hcm.virtualHosts) {
      for (const r of vh.routes) {
        if (r.cluster && !cfg.clusters.has(r.cluster)) {
          throw new UnsupportedConfigError(`route ${r.name}: cluster ${r.cluster} is not defined`);
        }
      }
    }
  }
  for (const c of cfg.clusters.values()) {
    for (const f of c.upstreamFilters) checkGrpc(f, `cluster ${c.name} filter ${f.name}`);
  }
}

function parseSocketAddress(r: Reader): { host: string; port: number } {
  const sa = r.child('socket_address');
  if (!sa) throw new UnsupportedConfigError(`${r.at('socket_address')}: required`);
  const host = sa.reqStr('address');
  const port = sa.num('port_value');
  if (port === undefined) throw new UnsupportedConfigError(`${sa.at('port_value')}: required`);
  sa.done();
  r.done();
  return { host, port };
}

function parseListener(r: Reader): ListenerConfig {
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
  r.enumOf('codec_type', ['AUTO', 'HTTP1'] as const, 'AUTO'); // the stand-in listener speaks HTTP/1.1 only
  const generateRequestId = r.bool('generate_request_id', true);
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
  return { routeConfigName, virtualHosts, internalOnlyHeaders, httpFilters, accessLogs, generateRequestId };
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

function parseRetryPolicy(r: Reader): RetryPolicyConfig {
  const retryOn = r.str('retry_on') ?? '';
  const numRetries = r.num('num_retries') ?? 1; // route_components.proto: default 1
  const perTryTimeoutMs = r.durationMs('per_try_timeout') ?? 0;
  const perTryIdleTimeoutMs = r.durationMs('per_try_idle_timeout') ?? 0;
  const retriableStatusCodes = r.list('retriable_status_codes').map((c) => Number(c));
  // RetryBackOff: base default 25 ms, max default 10 × base (route_components.proto).
  let backOffBaseMs = 25;
  let backOffMaxMs: number | undefined;
  const bo = r.child('retry_back_off');
  if (bo) {
    backOffBaseMs = bo.durationMs('base_interval') ?? 25;
    backOffMaxMs = bo.durationMs('max_interval');
    bo.done();
  }
  let previousPrioritiesUpdateFrequency: number | undefined;
  const prio = r.child('retry_priority');
  if (prio) {
    if (prio.reqStr('name') !== 'envoy.retry_priorities.previous_priorities') {
      throw new UnsupportedConfigError(`${prio.at('name')}: only envoy.retry_priorities.previous_priorities is supported`);
    }
    const t = prio.typed('typed_config', 'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig');
    previousPrioritiesUpdateFrequency = t.num('update_frequency');
    if (!previousPrioritiesUpdateFrequency || previousPrioritiesUpdateFrequency <= 0) {
      throw new UnsupportedConfigError(`${t.at('update_frequency')}: must be > 0`);
    }
    t.done();
    prio.done();
  }
  let previousHostsPredicate = false;
  for (const p of r.children('retry_host_predicate')) {
    if (p.reqStr('name') !== 'envoy.retry_host_predicates.previous_hosts') {
      throw new UnsupportedConfigError(`${p.at('name')}: only envoy.retry_host_predicates.previous_hosts is supported`);
    }
    p.typed('typed_config', 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate').done();
    p.done();
    previousHostsPredicate = true;
  }
  // "If unspecified, this will default to retrying once" (route_components.proto).
  const hostSelectionRetryMaxAttempts = r.num('host_selection_retry_max_attempts') ?? 1;
  r.done();
  return {
    retryOn,
    numRetries,
    perTryTimeoutMs,
    perTryIdleTimeoutMs,
    retriableStatusCodes,
    backOffBaseMs,
    backOffMaxMs: backOffMaxMs ?? backOffBaseMs * 10,
    previousPrioritiesUpdateFrequency,
    previousHostsPredicate,
    hostSelectionRetryMaxAttempts,
  };
}

const EXT_PROC_TYPE = 'envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor';

function parseHttpFilter(r: Reader, upstream: boolean): HttpFilterConfig {
  const name = r.reqStr('name');
  const t = r.child('typed_config');
  if (!t) throw new UnsupportedConfigError(`${r.at('typed_config')}: required`);
  const type = t.str('@type');
  let out: HttpFilterConfig;
  if (type === `type.googleapis.com/${EXT_PROC_TYPE}`) {
    out = { type: 'ext_proc', name, config: parseExtProc(t) };
  } else if (type === 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' && !upstream) {
    out = { type: 'router', name, suppressEnvoyHeaders: t.bool('suppress_envoy_headers') };
  } else if (type === 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation' && upstream) {
    out = parseHeaderMutationFilter(t, name);
  } else if (type === 'type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec' && upstream) {
    out = { type: 'upstream_codec', name };
  } else {
    throw new UnsupportedConfigError(`${t.at('@type')}: filter type ${String(type)} is not supported ${upstream ? 'upstream' : 'in the HCM'}`);
  }
  t.done();
  r.done();
  return out;
}

function parseHeaderMutationFilter(t: Reader, name: string): HttpFilterConfig {
  const m = t.child('mutations');
  const parseOps = (k: string): HeaderMutationOp[] =>
    (m ? m.children(k) : []).map((op) => {
      const app = op.child('append');
      const rem = op.str('remove');
      op.done();
      if (rem !== undefined) {
        return { kind: 'remove', key: rem.toLowerCase(), appendAction: 'APPEND_IF_EXISTS_OR_ADD', keepEmptyValue: false };
      }
      if (!app) throw new UnsupportedConfigError(`${op.path}: append or remove is required`);
      const h = app.child('header');
      if (!h) throw new UnsupportedConfigError(`${app.at('header')}: required`);
      const key = h.reqStr('key').toLowerCase();
      const value = compileFormat(h.str('value') ?? '', h.at('value'));
      h.done();
      const appendAction = app.enumOf(
        'append_action',
        ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'] as const,
        'APPEND_IF_EXISTS_OR_ADD',
      );
      const keepEmptyValue = app.bool('keep_empty_value');
      app.done();
      return { kind: 'append', key, value, appendAction, keepEmptyValue };
    });
  const request = parseOps('request_mutations');
  const response = parseOps('response_mutations');
  m?.done();
  return { type: 'header_mutation', name, request, response };
}

function parseMode(r: Reader | undefined): ProcessingMode {
  const mode: ProcessingMode = {
    request_header_mode: r?.enumOf('request_header_mode', HEADER_SEND_MODES, 'DEFAULT') ?? 'DEFAULT',
    response_header_mode: r?.enumOf('response_header_mode', HEADER_SEND_MODES, 'DEFAULT') ?? 'DEFAULT',
    request_body_mode: r?.enumOf('request_body_mode', BODY_SEND_MODES, 'NONE') ?? 'NONE',
    response_body_mode: r?.enumOf('response_body_mode', BODY_SEND_MODES, 'NONE') ?? 'NONE',
    request_trailer_mode: r?.enumOf('request_trailer_mode', HEADER_SEND_MODES, 'DEFAULT') ?? 'DEFAULT',
    response_trailer_mode: r?.enumOf('response_trailer_mode', HEADER_SEND_MODES, 'DEFAULT') ?? 'DEFAULT',
  };
  r?.done();
  for (const k of ['request_body_mode', 'response_body_mode'] as const) {
    if (mode[k] === 'FULL_DUPLEX_STREAMED' || mode[k] === 'GRPC') {
      throw new UnsupportedConfigError(`${r?.at(k)}: ${mode[k]} is not implemented by the stand-in`);
    }
  }
  for (const k of ['request_trailer_mode', 'response_trailer_mode'] as const) {
    // The HTTP/1 codec drops trailers unless http_protocol_options.enable_trailers, so the
    // stand-in never has trailers to send (router/ext_proc trailer paths are not implemented).
    if (mode[k] === 'SEND') throw new UnsupportedConfigError(`${r?.at(k)}: trailer processing (SEND) is not implemented by the stand-in`);
  }
  return mode;
}

function parseMutationRules(r: Reader | undefined): MutationRulesConfig {
  const regex = (k: string): RegExp | undefined => {
    const c = r?.child(k);
    if (!c) return undefined;
    const re = c.reqStr('regex');
    c.ignore('google_re2', 'RE2 engine settings; patterns are compiled with JS RegExp');
    c.done();
    // RegexMatcher: the whole value must match.
    return new RegExp(`^(?:${re})$`);
  };
  const rules: MutationRulesConfig = {
    allow_all_routing: r?.bool('allow_all_routing') ?? false,
    allow_envoy: r?.bool('allow_envoy') ?? false,
    disallow_system: r?.bool('disallow_system') ?? false,
    disallow_all: r?.bool('disallow_all') ?? false,
    disallow_is_error: r?.bool('disallow_is_error') ?? false,
    allow_expression: regex('allow_expression'),
    disallow_expression: regex('disallow_expression'),
  };
  r?.done();
  return rules;
}

function parseExtProc(t: Reader): ExtProcConfig {
  const gs = t.child('grpc_service');
  if (!gs) throw new UnsupportedConfigError(`${t.at('grpc_service')}: required (http_service is not supported)`);
  const eg = gs.child('envoy_grpc');
  if (!eg) throw new UnsupportedConfigError(`${gs.at('envoy_grpc')}: required (google_grpc is not supported)`);
  const clusterName = eg.reqStr('cluster_name');
  const authority = eg.str('authority') ?? clusterName;
  eg.done();
  const initialMetadata = gs.children('initial_metadata').map((h): [string, string] => {
    const k = h.reqStr('key').toLowerCase();
    const v = h.str('value') ?? '';
    h.done();
    return [k, v];
  });
  const timeoutMs = gs.durationMs('timeout');
  gs.done();

  const messageTimeoutMs = t.durationMs('message_timeout') ?? 200; // ext_proc.proto default 200 ms
  const maxMessageTimeoutMs = t.durationMs('max_message_timeout') ?? 0;
  const disableClear = t.bool('disable_clear_route_cache');
  let routeCacheAction = t.enumOf('route_cache_action', ['DEFAULT', 'CLEAR', 'RETAIN'] as const, 'DEFAULT');
  // ext_proc.cc FilterConfig: both set → config error; disable_clear_route_cache ≡ RETAIN.
  if (disableClear && routeCacheAction !== 'DEFAULT') {
    throw new UnsupportedConfigError(`${t.path}: disable_clear_route_cache and route_cache_action can not be set to none-default at the same time`);
  }
  if (disableClear) routeCacheAction = 'RETAIN';

  const mo = t.child('metadata_options');
  const ns = (k: string): string[] => {
    const c = mo?.child(k);
    if (!c) return [];
    const untyped = c.strings('untyped');
    if (c.strings('typed').length > 0) throw new UnsupportedConfigError(`${c.at('typed')}: typed metadata is not implemented by the stand-in`);
    c.done();
    return untyped;
  };
  const forwardingNamespaces = ns('forwarding_namespaces');
  const receivingNamespaces = ns('receiving_namespaces');
  mo?.done();

  const sos = t.child('status_on_error');
  let statusOnError = 500;
  if (sos) {
    const code = sos.raw('code');
    statusOnError = typeof code === 'number' ? code : Number(HTTP_STATUS_NAMES[String(code)] ?? NaN);
    if (!Number.isInteger(statusOnError)) throw new UnsupportedConfigError(`${sos.at('code')}: unsupported status ${String(code)}`);
    sos.done();
  }

  const cfg: ExtProcConfig = {
    grpcService: { clusterName, authority, initialMetadata, timeoutMs },
    failureModeAllow: t.bool('failure_mode_allow'),
    processingMode: parseMode(t.child('processing_mode')),
    requestAttributes: t.strings('request_attributes').map((e, i) => compileAttribute(e, `${t.at('request_attributes')}[${i}]`)),
    responseAttributes: t.strings('response_attributes').map((e, i) => compileAttribute(e, `${t.at('response_attributes')}[${i}]`)),
    messageTimeoutMs,
    maxMessageTimeoutMs,
    mutationRules: parseMutationRules(t.child('mutation_rules')),
    routeCacheAction,
    allowModeOverride: t.bool('allow_mode_override'),
    allowedOverrideModes: t.children('allowed_override_modes').map((m) => parseMode(m)),
    disableImmediateResponse: t.bool('disable_immediate_response'),
    forwardingNamespaces,
    receivingNamespaces,
    observabilityMode: t.bool('observability_mode'),
    deferredCloseTimeoutMs: t.durationMs('deferred_close_timeout') ?? 5000,
    statusOnError,
    statPrefix: t.str('stat_prefix') ?? '',
  };
  if (cfg.observabilityMode) {
    // ext_proc.proto: observability mode supports only STREAMED / NONE bodies.
    for (const k of ['request_body_mode', 'response_body_mode'] as const) {
      const m = cfg.processingMode[k];
      if (m !== 'NONE' && m !== 'STREAMED') throw new UnsupportedConfigError(`${t.path}: observability_mode with ${k} ${m} is not supported`);
    }
  }
  return cfg;
}

/** The envoy.type.v3.StatusCode names used in configs (status_on_error). */
const HTTP_STATUS_NAMES: Record<string, number> = {
  OK: 200,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  PayloadTooLarge: 413,
  TooManyRequests: 429,
  InternalServerError: 500,
  BadGateway: 502,
  ServiceUnavailable: 503,
  GatewayTimeout: 504,
};

function parseCluster(r: Reader): ClusterConfig {
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

// ---- caller overrides ----------------------------------------------------------------------------

/** `http://127.0.0.1:1234` or `127.0.0.1:1234` → host/port. */
export function parseHostPort(s: string): { host: string; port: number } {
  const u = new URL(s.includes('://') ? s : `http://${s}`);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
}

/**
 * Replaces endpoint addresses. A string replaces every endpoint's address of a single-endpoint
 * cluster; `string[][]` gives one address per endpoint per priority and must have the YAML's shape
 * (endpoint metadata and hostnames are kept from the YAML).
 */
export function applyEndpointOverrides(cfg: BootstrapConfig, overrides: Record<string, string | string[][]>): void {
  for (const [name, ov] of Object.entries(overrides)) {
    const c = cfg.clusters.get(name);
    if (!c) throw new UnsupportedConfigError(`clusterEndpoints.${name}: no such cluster in the config`);
    const shape = c.priorities.map((p) => p.length);
    const grid = typeof ov === 'string' ? [[ov]] : ov;
    if (grid.length !== shape.length || grid.some((p, i) => p.length !== shape[i])) {
      throw new UnsupportedConfigError(`clusterEndpoints.${name}: expected ${JSON.stringify(shape)} endpoints per priority, got ${JSON.stringify(grid.map((p) => p.length))}`);
    }
    grid.forEach((p, i) =>
      p.forEach((addr, j) => {
        const ep = c.priorities[i]![j]!;
        Object.assign(ep, parseHostPort(addr), { overridden: true });
      }),
    );
  }
}
