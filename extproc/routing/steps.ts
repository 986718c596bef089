/**
 * @module routing/steps
 * Chain lookups for the stages: the cluster and retry headers of a route from a start step
 * (router side), and which step Envoy picked for an attempt (attempt side).
 *
 * The attempt side reads only what Envoy hands the attempt stream — the chosen host's endpoint
 * metadata (`request_attributes`) and the cluster name — never state from the router stream, so
 * it is right when the two streams land on different gateway replicas.
 */
import type { Catalog, ChainStep, CompiledRoute } from './catalog.js';
import { METADATA_NAMESPACE, UPSTREAM_HOST_METADATA_ATTRIBUTE } from './envoyChain.js';

/** Envoy cluster that runs `route`'s chain from `startStep` (0-based). */
export function clusterFor(route: CompiledRoute, startStep: number): string {
  const c = route.clusters[startStep];
  if (c === undefined) throw new RangeError(`route "${route.name}" has ${route.steps.length} steps, no step ${startStep}`);
  return c;
}

/**
 * Request headers that make Envoy run `route`'s chain from `startStep`, trying `usableSteps`
 * steps (default: all that remain): `x-gateway-cluster` and the `x-envoy-*` retry signals.
 */
export function retryHeadersFor(route: CompiledRoute, startStep = 0, usableSteps?: number): Readonly<Record<string, string>> {
  const row = route.headers[startStep];
  if (row === undefined) throw new RangeError(`route "${route.name}" has ${route.steps.length} steps, no step ${startStep}`);
  const n = usableSteps ?? row.length;
  if (!Number.isInteger(n) || n < 1 || n > row.length) throw new RangeError(`usableSteps must be 1..${row.length}`);
  return row[n - 1]!;
}

/** The step an attempt was sent to. */
export interface AttemptStep {
  /** Route name, when the metadata names a route this config knows. */
  readonly route?: string;
  readonly step: ChainStep;
}

function field(attrs: Readonly<Record<string, unknown>>, key: string): unknown {
  const ns = attrs[UPSTREAM_HOST_METADATA_ATTRIBUTE];
  if (ns !== null && typeof ns === 'object' && key in ns) return (ns as Record<string, unknown>)[key];
  return attrs[`xds.upstream_host_metadata.filter_metadata['${METADATA_NAMESPACE}']['${key}']`];
}

/**
 * Which chain step Envoy picked, from the attempt stream's attributes
 * (`ProcessingRequest.attributes["envoy.filters.http.ext_proc"]`, keyed by expression): the whole
 * namespace (`UPSTREAM_HOST_METADATA_ATTRIBUTE`) or single keys
 * (`…['ai_gateway']['provider']`). `route` + `step` locate the step; when the route is unknown
 * (a config change not yet everywhere) `model` + `provider` still name it. Undefined when the
 * metadata names nothing this config serves.
 */
export function stepFromUpstream(attrs: Readonly<Record<string, unknown>>, catalog: Catalog): AttemptStep | undefined {
  const route = field(attrs, 'route');
  const stepRaw = field(attrs, 'step');
  const model = field(attrs, 'model');
  const provider = field(attrs, 'provider');
  const stepIndex = typeof stepRaw === 'number' ? stepRaw : typeof stepRaw === 'string' && /^\d+$/.test(stepRaw) ? Number(stepRaw) : undefined;
  if (typeof route === 'string' && stepIndex !== undefined) {
    const r = catalog.routeByName.get(route);
    const s = r?.steps[stepIndex];
    // The model must agree: a route renamed or reordered since Envoy's config was rendered
    // must not send an attempt to the wrong model.
    if (r && s && (model === undefined || model === s.model)) return { route: r.name, step: s };
  }
  if (typeof model === 'string') {
    const m = catalog.models.get(model);
    if (m && (provider === undefined || provider === m.provider)) {
      for (const r of catalog.routes) {
        const s = r.steps.find((x) => x.model === m.name);
        if (s) return { step: s };
      }
    }
  }
  return undefined;
}
