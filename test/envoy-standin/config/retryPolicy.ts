/**
 * RetryPolicy (route or virtual host): retry_on, back-off, retry priority and host predicates.
 */
import { UnsupportedConfigError } from '../errors.js';
import type { RetryPolicyConfig } from './model.js';
import type { Reader } from './reader.js';

export function parseRetryPolicy(r: Reader): RetryPolicyConfig {
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
