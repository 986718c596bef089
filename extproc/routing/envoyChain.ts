/**
 * @module routing/envoyChain
 * How Envoy carries out a route's fallback chain, shared by the route stage (request headers),
 * the attempt stage (which step Envoy picked) and the Envoy renderer (clusters, retry policy).
 *
 * - Each route gets one cluster per chain *suffix*: `chain_<route>_from_<k>` holds steps
 *   k, k+1, … as priorities 0, 1, …. A request starts on `from_0`; when step 0 is cooled down the
 *   route stage picks `from_1`, so Envoy never pays the failed attempt again. Every endpoint's
 *   metadata `filter_metadata.ai_gateway` names `route`, `step` (index in the full chain, the same
 *   in every suffix cluster), `model` and `provider`.
 * - The route stage selects the cluster with `x-gateway-cluster` (route `cluster_header`, with
 *   `clear_route_cache`) and sets the chain's retry signals: `x-envoy-max-retries` (usable steps
 *   − 1), `x-envoy-retry-on`, `x-envoy-retriable-status-codes`,
 *   `x-envoy-upstream-rq-per-try-timeout-ms` (facts §3.3: retry-on and codes are OR-ed/appended
 *   to the route's policy, max-retries overrides it; Envoy consumes and removes them).
 * - The route's `retry_priority: previous_priorities` (update_frequency 1) makes each retry
 *   leave the priorities already tried (facts §3.2), so retry n goes to step start + n.
 */
import type { retryTriggers } from '../config/schema.js';

/** A route's retry triggers in Envoy's terms. */
export interface EnvoyRetryPolicy {
  /** `retry_on` / `x-envoy-retry-on` tokens. */
  readonly retryOn: readonly string[];
  /** `retriable_status_codes` / `x-envoy-retriable-status-codes`. */
  readonly statusCodes: readonly number[];
  readonly perTryTimeoutMs?: number;
}

/** Endpoint metadata namespace (docs/conventions.md). */
export const METADATA_NAMESPACE = 'ai_gateway';
/** Attribute the attempt filter requests: the whole metadata namespace of the chosen host. */
export const UPSTREAM_HOST_METADATA_ATTRIBUTE = "xds.upstream_host_metadata.filter_metadata['ai_gateway']";
/** Header that selects the cluster (route `cluster_header`). */
export const CLUSTER_HEADER = 'x-gateway-cluster';

/** The default (last) route's whole chain: the conventional name from docs/conventions.md. */
export const DEFAULT_CHAIN_CLUSTER = 'llm_chain';

/** `chain_<route>_from_<k>` (the default route's `from_0` is `llm_chain`). */
export function chainClusterName(route: string, startStep: number): string {
  return `chain_${route}_from_${startStep}`;
}

/** Maps config triggers to Envoy retry conditions. */
export function envoyRetryPolicy(
  retryOn: readonly (number | (typeof retryTriggers)[number])[],
  perTryTimeoutMs?: number,
): EnvoyRetryPolicy {
  const tokens = new Set<string>();
  const codes: number[] = [];
  for (const t of retryOn) {
    if (typeof t === 'number') {
      if (!codes.includes(t)) codes.push(t);
      tokens.add('retriable-status-codes');
    } else if (t === 'connect-failure') tokens.add('connect-failure');
    else if (t === 'reset') {
      tokens.add('reset');
      tokens.add('refused-stream');
    } else {
      // Envoy's router docs: `reset` retries when the upstream "does not respond at all
      // (disconnect/reset/read timeout)" — a per-try timeout is such a timeout.
      tokens.add('reset');
    }
  }
  const order = ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes'];
  return {
    retryOn: order.filter((t) => tokens.has(t)),
    statusCodes: codes.sort((a, b) => a - b),
    ...(perTryTimeoutMs !== undefined ? { perTryTimeoutMs } : {}),
  };
}

/** The headers for a chain cluster with `usableSteps` steps to try (1 = no retry). */
export function retryHeaders(cluster: string, policy: EnvoyRetryPolicy, usableSteps: number): Readonly<Record<string, string>> {
  const h: Record<string, string> = {
    [CLUSTER_HEADER]: cluster,
    'x-envoy-max-retries': String(Math.max(0, usableSteps - 1)),
  };
  if (policy.retryOn.length > 0) h['x-envoy-retry-on'] = policy.retryOn.join(',');
  if (policy.statusCodes.length > 0) h['x-envoy-retriable-status-codes'] = policy.statusCodes.join(',');
  if (policy.perTryTimeoutMs !== undefined) h['x-envoy-upstream-rq-per-try-timeout-ms'] = String(policy.perTryTimeoutMs);
  return Object.freeze(h);
}
