/**
 * @module envoy-render
 * Renders the Envoy bootstrap from the gateway config (`render-envoy`).
 */
export { renderEnvoy } from './render.js';
export { renderEnvoyCommand, type RenderEnvoyIo } from './command.js';
export { chainClusters, renderRoutes, renderClusters, routedPaths, type ChainCluster } from './sections.js';
