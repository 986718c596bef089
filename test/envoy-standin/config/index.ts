/**
 * Envoy bootstrap YAML → the typed model the stand-in runs.
 *
 * Every field the stand-in reads is listed in this folder; any other field makes `parseBootstrap` throw an
 * UnsupportedConfigError naming its path (e.g. `static_resources.clusters[1].outlier_detection`),
 * so the config we ship is exactly the config the tests exercise. A few fields are accepted
 * without effect, each with the reason next to it (`ignore(...)`): names of stats, the admin
 * interface, DNS details and TLS settings (tests talk plain HTTP to loopback fakes).
 *
 * Defaults are Envoy's, from the data-plane-api protos (see facts §1.5, §3.2).
 */
export { UnsupportedConfigError } from '../errors.js';
export * from './model.js';
export { loadBootstrapFile, parseBootstrap } from './bootstrap.js';
export { applyEndpointOverrides, parseHostPort } from './overrides.js';
export type { LocalReplyConfig, AccessLogFilterConfig, BodyFormatConfig, ResponseMapperConfig, JsonTemplate } from './localReply.js';
