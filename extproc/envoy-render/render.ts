/**
 * @module envoy-render/render
 * gateway.yaml is the one source of truth: this renders the Envoy bootstrap (what
 * envoy/envoy.yaml is) from a validated gateway config — the fixed template plus the routes and
 * the chain and provider clusters the config's routes and providers imply.
 */
import type { GatewayConfig } from '../config/schema.js';
import { renderClusters, renderRoutes } from './sections.js';
import { envoyTemplate } from './template.js';

/** Renders the Envoy bootstrap YAML for `config`. Throws on a config Envoy could not run (cluster name clashes). */
export function renderEnvoy(config: GatewayConfig): string {
  const port = config.server.port === 0 ? 50051 : config.server.port;
  const text = envoyTemplate
    .replace('%%ROUTES%%', renderRoutes(config))
    .replace('%%CLUSTERS%%', renderClusters(config))
    .replace('%%EXTPROC_PORT%%', String(port));
  return config.pipeline.streamObserver ? text.replace(ROUTER_FILTER, OBSERVER_FILTER + ROUTER_FILTER) : text;
}

/** The HCM's router filter line in the template: the observability filter goes right before it. */
const ROUTER_FILTER = '          - name: envoy.filters.http.router\n';

/**
 * `pipeline.streamObserver: true`: a second ext_proc filter in observability mode after the main
 * one. Envoy runs encoder filters in reverse order, so it sees each response chunk before the
 * main filter rewrites it, and sends it without waiting for an answer: stages that only observe
 * (usage, cache capture) add no round trip per chunk (facts §2.1; ProcessingRequest
 * observability_mode).
 */
const OBSERVER_FILTER = [
  '          # Send-and-go copy of the response for observing stages (usage, cache capture): Envoy',
  '          # waits for no answer, so watching a stream adds no round trip per chunk. The gateway',
  '          # joins it to the main stream by x-request-id (pipeline.streamObserver: true).',
  '          - name: envoy.filters.http.ext_proc/observer',
  '            typed_config:',
  '              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
  '              grpc_service:',
  '                envoy_grpc: { cluster_name: ext_proc }',
  '              observability_mode: true',
  '              # How long Envoy keeps the stream open after the response for chunks in flight.',
  '              deferred_close_timeout: 5s',
  '              stat_prefix: observer',
  '              processing_mode:',
  '                request_header_mode: SEND',
  '                response_header_mode: SEND',
  '                request_body_mode: NONE',
  '                response_body_mode: STREAMED',
  '                request_trailer_mode: SKIP',
  '                response_trailer_mode: SKIP',
  '',
].join('\n');
