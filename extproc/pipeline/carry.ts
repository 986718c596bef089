/**
 * @module pipeline/carry
 * Values a router stage hands to the per-attempt stages of the same request. The router stream
 * and an attempt stream may land on different gateway replicas, so nothing may travel in process
 * memory alone: a carried value is written as Envoy dynamic metadata in the `ai_gateway`
 * namespace, which Envoy keeps on the request's StreamInfo, shares with upstream filters
 * (source/docs/upstream_filters.md) and forwards to the attempt filter through its
 * `metadata_options.forwarding_namespaces` (envoy/envoy.yaml). Values must therefore be small,
 * JSON-shaped and free of secrets and PII (they also reach the access log).
 */

/** The dynamic metadata namespace carried values travel in (docs/conventions.md). */
export const CARRY_NAMESPACE = 'ai_gateway';

/** A typed key for a carried value. */
export interface Carried<T> {
  readonly name: string;
  /** Phantom field carrying the value's type. */
  readonly __type?: T;
}

/** Declares a carried value; `name` becomes the metadata key `carry_<name>`. */
export function carried<T>(name: string): Carried<T> {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`carried value name "${name}" must be lower-case letters, digits and _`);
  return { name };
}

/** The metadata key of a carried value. */
export function carryKey(key: Carried<unknown>): string {
  return `carry_${key.name}`;
}
