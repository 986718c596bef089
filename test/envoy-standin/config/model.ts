/**
 * The typed model the stand-in runs, produced from the bootstrap YAML by `parseBootstrap`.
 *
 * Defaults are Envoy's, from the data-plane-api protos (see facts §1.5, §3.2).
 */
import type { JsonObject } from '../proto.js';
import type { AttributeExpr } from '../attributes.js';
import type { FormatTemplate } from '../formatter.js';
import type { LocalReplyConfig } from './localReply.js';

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

/** HttpConnectionManager.InternalAddressConfig (http_connection_manager.proto). */
export interface InternalAddressConfig {
  unixSockets: boolean;
  cidrRanges: { prefix: string; len: number }[];
}

export interface HcmConfig {
  routeConfigName: string;
  virtualHosts: VirtualHostConfig[];
  /** RouteConfiguration.internal_only_headers, lower-cased: stripped from external requests. */
  internalOnlyHeaders: string[];
  httpFilters: HttpFilterConfig[];
  accessLogs: AccessLogConfig[];
  generateRequestId: boolean;
  /** HCM preserve_external_request_id: keep an edge request's own x-request-id. */
  preserveExternalRequestId: boolean;
  /** use_remote_address (default false): the connection's peer is the client address, XFF is appended. */
  useRemoteAddress: boolean;
  /** xff_num_trusted_hops (default 0). */
  xffNumTrustedHops: number;
  /**
   * internal_address_config; undefined = Envoy's default, which trusts no IP address since the
   * runtime guard explicit_internal_address_config became the only behaviour (removed in 1.36.0).
   */
  internalAddressConfig?: InternalAddressConfig;
  localReply?: LocalReplyConfig;
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
