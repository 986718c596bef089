/**
 * The one version setting of the stand-in: which Envoy release line it behaves like where those
 * differ for this project (docs/envoy-versions.md). The default is the release docker-compose.yml
 * pins.
 *
 * - '1.36' (pinned, `envoyproxy/envoy:v1.36.13`): an immediate_response from an ext_proc filter in
 *   an upstream (per-attempt) filter chain is ignored — counter send_immediate_resp_upstream_ignored,
 *   ext_proc.cc Filter::sendImmediateResponse `if (config_->isUpstream()) { ...; return; }` — while
 *   the filter has already ended processing and closed its stream (onReceiveMessage,
 *   kImmediateResponse), so the attempt's held headers are never continued: the attempt stalls
 *   until per_try_idle_timeout / per_try_timeout / the route timeout resets it.
 * - '1.38' (the base of Envoy AI Gateway v1.x, 1.38.1): the same immediate response is sent as an
 *   upstream local reply (envoyproxy/envoy PR 41231, "ext_proc: allow immediate response from
 *   upstream filter"), which the router does not retry.
 *
 * Behaviours common to both (local replies skip ext_proc, since 1.34.0) are not switched here.
 */
export type EnvoyVersion = '1.36' | '1.38';

export const PINNED_ENVOY_VERSION: EnvoyVersion = '1.36';

/** Does an upstream ext_proc filter honour immediate_response (PR 41231)? */
export function upstreamImmediateResponseHonoured(v: EnvoyVersion): boolean {
  return v !== '1.36';
}
