/**
 * @module admin/counts
 * Live counts for the admin page's arrows, from the usage records a ledger admits (since the
 * gateway started): requests, requests per route, fallbacks per chain step, answers served per
 * step, cache hit rate, PII entities redacted, 429s. Plain counters; a record is a few map
 * updates. Keys match the diagram's edge keys (diagram/model.ts).
 */
import type { GatewayConfig } from '../config/schema.js';
import { buildCatalog } from '../routing/catalog.js';
import type { UsageRecord } from '../usage/record.js';

export interface CountsSnapshot {
  readonly requests: number;
  readonly byRoute: Readonly<Record<string, number>>;
  /** `<route>:<k>` → requests that fell over from step k to step k+1. */
  readonly fallbacks: Readonly<Record<string, number>>;
  /** `<route>:<k>` → requests answered by step k. */
  readonly served: Readonly<Record<string, number>>;
  readonly cacheHits: number;
  readonly cacheLookups: number;
  readonly piiRedacted: number;
  /** Refused by the gateway's rate limit (429 to the client). */
  readonly rateLimited: number;
  /** 429 answers from providers (each one moves a request along its chain or ends it). */
  readonly upstream429: number;
  readonly errors: number;
}

const inc = (m: Map<string, number>, k: string, n = 1): void => void m.set(k, (m.get(k) ?? 0) + n);

export class LiveCounts {
  private requests = 0;
  private readonly byRoute = new Map<string, number>();
  private readonly fallbacks = new Map<string, number>();
  private readonly served = new Map<string, number>();
  private cacheHits = 0;
  private cacheLookups = 0;
  private piiRedacted = 0;
  private rateLimited = 0;
  private upstream429 = 0;
  private errors = 0;

  /** `routes()` gives the chains of the config in force (read per record: a reload may change them). */
  constructor(private readonly routes: () => GatewayConfig) {}

  add(r: UsageRecord): void {
    this.requests++;
    const config = this.routes();
    // Without a route stage no record names a route: Envoy ran the default route's chain.
    const routeName = r.route ?? (hasRouteStage(config) ? undefined : config.routes[config.routes.length - 1]?.name ?? (config.routes.length ? `route-${config.routes.length - 1}` : undefined));
    if (routeName) inc(this.byRoute, routeName);
    if (r.cache === 'hit' || r.cache === 'miss') {
      this.cacheLookups++;
      if (r.cache === 'hit') this.cacheHits++;
    }
    for (const n of Object.values(r.pii)) this.piiRedacted += n;
    if (r.rateLimit === 'reject' || r.errorClass === 'rate_limited') this.rateLimited++;
    if (r.errorClass === 'upstream_rate_limited') this.upstream429++;
    if (r.errorClass) this.errors++;
    const route = routeName ? buildCatalogCached(config).routeByName.get(routeName) : undefined;
    if (!route) return;
    const stepOf = (model: string): number => route.steps.findIndex((s) => s.model === model);
    // Consecutive models of the path that are consecutive steps of the chain: one fallback each.
    for (let i = 1; i < r.fallbackPath.length; i++) {
      const k = stepOf(r.fallbackPath[i - 1]!);
      if (k >= 0 && stepOf(r.fallbackPath[i]!) === k + 1) inc(this.fallbacks, `${route.name}:${k}`);
    }
    if (r.servedModel && r.status !== undefined && r.status < 400) {
      const k = stepOf(r.servedModel);
      if (k >= 0) inc(this.served, `${route.name}:${k}`);
    }
  }

  snapshot(): CountsSnapshot {
    const obj = (m: Map<string, number>): Record<string, number> => Object.fromEntries(m);
    return {
      requests: this.requests,
      byRoute: obj(this.byRoute),
      fallbacks: obj(this.fallbacks),
      served: obj(this.served),
      cacheHits: this.cacheHits,
      cacheLookups: this.cacheLookups,
      piiRedacted: this.piiRedacted,
      rateLimited: this.rateLimited,
      upstream429: this.upstream429,
      errors: this.errors,
    };
  }
}

function hasRouteStage(config: GatewayConfig): boolean {
  return config.pipeline.stages.some((s) => (typeof s === 'string' ? s : s.name) === 'route');
}

const catalogs = new WeakMap<GatewayConfig, ReturnType<typeof buildCatalog>>();
function buildCatalogCached(config: GatewayConfig): ReturnType<typeof buildCatalog> {
  let c = catalogs.get(config);
  if (!c) catalogs.set(config, (c = buildCatalog(config)));
  return c;
}

/** The text a diagram edge with `key` shows for these counts (undefined: nothing to add). */
export function edgeCount(s: CountsSnapshot, key: string): string | undefined {
  const [kind, a, b] = key.split(':');
  switch (kind) {
    case 'requests':
      return `${s.requests} requests`;
    case 'route':
      return `${s.byRoute[a!] ?? 0} req`;
    case 'fallback':
      return `${s.fallbacks[`${a}:${b}`] ?? 0} fell over`;
    case 'serve':
      return `${s.served[`${a}:${b}`] ?? 0} served`;
    case 'ledger':
      return `${s.requests} records`;
    case 'cache':
      return cacheText(s);
    case 'stage':
      if (a === 'pii') return `${s.piiRedacted} PII redacted`;
      if (a === 'rate-limit') return `${s.rateLimited} × 429`;
      if (a === 'semantic-cache' || a === 'cache') return cacheText(s);
      return undefined;
    default:
      return undefined;
  }
}

export function cacheText(s: CountsSnapshot): string {
  return s.cacheLookups === 0 ? 'hit rate –' : `hit rate ${Math.round((100 * s.cacheHits) / s.cacheLookups)}% (${s.cacheHits}/${s.cacheLookups})`;
}
