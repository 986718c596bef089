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
  return envoyTemplate
    .replace('%%ROUTES%%', renderRoutes(config))
    .replace('%%CLUSTERS%%', renderClusters(config))
    .replace('%%EXTPROC_PORT%%', String(port));
}
