/**
 * @module lazyRequire
 * Loads a CommonJS dependency on first use. Every stage module is imported at start (the
 * registry), but a pass-through gateway never talks to Redis, Postgres or an OpenTelemetry
 * exporter: loading those clients only when a configured stage creates one keeps ~40 MiB out of
 * the resident memory of gateways that do not use them. Synchronous (stage factories are), and
 * typed by the module's own types.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A loader for `id`: the module, required the first time it is called. */
export function lazyRequire<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= require(id) as T);
}
