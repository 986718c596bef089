/**
 * @module identity/spiffe
 * SPIFFE IDs (`spiffe://trust-domain/path`, SPIFFE-ID spec §2) and the Istio/Kubernetes shape
 * `spiffe://cluster.local/ns/<namespace>/sa/<service-account>`.
 */

export interface SpiffeId {
  /** The whole ID, normalised (lower-case scheme and trust domain). */
  readonly id: string;
  readonly trustDomain: string;
  /** Path segments after the trust domain. */
  readonly segments: readonly string[];
  /** Set when the path is `/ns/<ns>/sa/<sa>` (Istio workload identity). */
  readonly namespace?: string;
  readonly serviceAccount?: string;
}

const MAX_ID_LENGTH = 2048; // SPIFFE-ID spec: URIs up to 2048 bytes
const trustDomainRe = /^[a-z0-9._-]+$/;
// SPIFFE-ID spec §2.2: path segments use letters, digits, ".", "-", "_" only.
const segmentRe = /^[A-Za-z0-9._-]+$/;

/** Parses one SPIFFE ID, or returns undefined when it is not a valid one. */
export function parseSpiffeId(uri: string): SpiffeId | undefined {
  if (uri.length > MAX_ID_LENGTH || uri.length < 10) return undefined;
  if (uri.slice(0, 9).toLowerCase() !== 'spiffe://') return undefined;
  const rest = uri.slice(9);
  const slash = rest.indexOf('/');
  const trustDomain = (slash < 0 ? rest : rest.slice(0, slash)).toLowerCase();
  if (!trustDomainRe.test(trustDomain)) return undefined;
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const segments = path === '' ? [] : path.split('/');
  for (const s of segments) {
    if (!segmentRe.test(s) || s === '.' || s === '..') return undefined;
  }
  const id = `spiffe://${trustDomain}${segments.length ? `/${segments.join('/')}` : ''}`;
  if (segments.length === 4 && segments[0] === 'ns' && segments[2] === 'sa') {
    return { id, trustDomain, segments, namespace: segments[1]!, serviceAccount: segments[3]! };
  }
  return { id, trustDomain, segments };
}
