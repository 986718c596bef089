/**
 * ExternalProcessor filter settings: grpc_service, processing modes, mutation rules, metadata
 * namespaces, timeouts, status_on_error.
 */
import { compileAttribute } from '../attributes.js';
import { UnsupportedConfigError } from '../errors.js';
import {
  BODY_SEND_MODES,
  HEADER_SEND_MODES,
  type ExtProcConfig,
  type MutationRulesConfig,
  type ProcessingMode,
} from './model.js';
import type { Reader } from './reader.js';

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
export function parseExtProc(t: Reader): ExtProcConfig {
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
