/**
 * @module diagram/model
 * The gateway as configured, as one graph: calling services → Envoy → the ext_proc stages in
 * order (router filter, attempt filter, observability filter) → routing rules with their match
 * conditions → each route's chain of models (fallback arrows labelled with their triggers) →
 * providers; plus the backends the stages use (Redis, the semantic cache's and the ledger's
 * store) and the observability pipeline (metrics → Prometheus → Grafana, ledger → cost report).
 *
 * One structure, several renderers (mermaid.ts, dot.ts): what the drawing shows is decided
 * here only. Labels hold names and settings, never URLs, paths or keys (they may hold secrets
 * or differ per machine, and the README copy must not depend on the environment).
 *
 * Edges carry a `key` where the admin page can put a live count on them (requests per route,
 * fallbacks per chain step, …).
 */
import type { GatewayConfig, StageEntry } from '../config/schema.js';
import { chainClusters } from '../envoy-render/sections.js';
import { buildCatalog, type CompiledRoute } from '../routing/catalog.js';

/** What a node stands for (renderers pick shapes by kind). */
export type NodeKind = 'client' | 'envoy' | 'stage' | 'route' | 'model' | 'provider' | 'store' | 'observability';
/** `flow`: the request path; `fallback`: next chain step; `data`: a stage and its backend; `control`: a decision. */
export type EdgeKind = 'flow' | 'grpc' | 'fallback' | 'data' | 'control';

export interface DiagramNode {
  readonly id: string;
  /** Lines of the label, first line the name. */
  readonly lines: readonly string[];
  readonly kind: NodeKind;
  /** Group the node is drawn in. */
  readonly group?: string;
}

export interface DiagramEdge {
  readonly from: string;
  readonly to: string;
  readonly label?: string;
  readonly kind: EdgeKind;
  /** Where a live count goes (see admin/counts.ts): `requests`, `route:<r>`, `fallback:<r>:<k>`, `serve:<r>:<k>`, `stage:<name>`, … */
  readonly key?: string;
}

export interface DiagramGroup {
  readonly id: string;
  readonly label: string;
  readonly parent?: string;
}

export interface Diagram {
  readonly groups: readonly DiagramGroup[];
  readonly nodes: readonly DiagramNode[];
  readonly edges: readonly DiagramEdge[];
}

/** A stage entry's name and options (common keys removed). */
function entryOf(entry: StageEntry): { name: string; options: Record<string, unknown> } {
  if (typeof entry === 'string') return { name: entry, options: {} };
  const { name, failure: _f, timeoutMs: _t, ...options } = entry as Record<string, unknown> & { name: string };
  return { name, options };
}

const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** Stages that run on the attempt (upstream) filter: once per try. */
const ATTEMPT_STAGES = new Set(['translate']);
/** Stages that only watch response bodies (read from the observability filter with `streamObserver`). */
const OBSERVING_STAGES = new Set(['usage', 'rate-limit']);
const CACHE_STAGES = new Set(['semantic-cache', 'cache']);

/** What a stage does, in a few words, plus the settings worth seeing on the drawing. */
function stageLines(name: string, o: Record<string, unknown>): string[] {
  switch (name) {
    case 'parse-request':
      return [name, 'JSON parsed once, API dialect'];
    case 'identity': {
      const sources = Array.isArray(o['sources']) ? (o['sources'] as unknown[]).join(', ') : 'default sources';
      return [name, `caller from ${sources}`];
    }
    case 'pii':
      return [name, o['restore'] === false ? 'redact prompts' : 'redact prompts, restore answers'];
    case 'route':
      return [name, 'first matching rule → chain cluster'];
    case 'translate':
      return [name, 'per attempt: request in the provider dialect'];
    case 'rate-limit': {
      const limits = Array.isArray(o['limits']) ? (o['limits'] as unknown[]).map(limitText) : [];
      return [name, `${o['backend'] === 'redis' ? 'shared (Redis)' : 'in-memory'}${limits.length ? ': ' + limits.join('; ') : ''}`];
    }
    case 'usage':
      return [name, 'tokens, cost, one record per request'];
    default:
      return CACHE_STAGES.has(name) ? [name, 'semantic lookup, write on finish'] : [name];
  }
}

/** `caller 10 req/min` from a limit rule. */
function limitText(rule: unknown): string {
  const r = obj(rule);
  const units: [string, string][] = [
    ['requestsPerMinute', 'req/min'],
    ['inputTokensPerMinute', 'input tok/min'],
    ['outputTokensPerMinute', 'output tok/min'],
    ['concurrentStreams', 'streams'],
    ['usdPerDay', 'USD/day'],
    ['usdPerMonth', 'USD/month'],
  ];
  const parts = units.filter(([k]) => r[k] !== undefined).map(([k, u]) => `${String(r[k])} ${u}`);
  const scope = [r['scope'], r['model'], r['route']].filter((x) => typeof x === 'string').join(' ');
  return `${scope} ${parts.join(', ')}`.trim();
}

/** The match conditions of a route as a short label ("default" when it has none). */
export function matchLabel(route: GatewayConfig['routes'][number]): string {
  const m = route.match;
  const parts: string[] = [];
  if (m.caller) parts.push(`caller ${m.caller.join(' | ')}`);
  if (m.preference) parts.push(`preference ${m.preference.join(' | ')}`);
  if (m.model) parts.push(`model ${m.model.join(' | ')}`);
  if (m.costTier) parts.push(`costTier ${m.costTier.join(' | ')}`);
  if (m.complexity) {
    const { min, max } = m.complexity;
    parts.push(min !== undefined && max !== undefined ? `complexity ${min}–${max}` : min !== undefined ? `complexity ≥ ${min}` : `complexity ≤ ${max}`);
  }
  if (m.withinLatency) parts.push('within x-max-latency-ms');
  if (m.budgetUsedAbove !== undefined) parts.push(`budget used > ${m.budgetUsedAbove}`);
  return parts.length ? parts.join(' & ') : 'default';
}

/** The retry triggers of a route as written in the config. */
export function triggerLabel(route: GatewayConfig['routes'][number]): string {
  return route.retryOn.map(String).join(' ') + (route.perTryTimeoutMs !== undefined ? ` (per try ${route.perTryTimeoutMs} ms)` : '');
}

const ordinal = (n: number): string => `${n}${n % 10 === 1 && n % 100 !== 11 ? 'st' : n % 10 === 2 && n % 100 !== 12 ? 'nd' : n % 10 === 3 && n % 100 !== 13 ? 'rd' : 'th'}`;

/** A node id safe in Mermaid and DOT. */
export function nodeId(...parts: (string | number)[]): string {
  return parts.map((p) => String(p).replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)).join('__');
}

/** The admin section, read loosely: the diagram must draw configs written before the key existed. */
function adminOf(config: GatewayConfig): { enabled: boolean } {
  return { enabled: obj((config as unknown as Record<string, unknown>)['admin'])['enabled'] === true };
}

/** Builds the drawing of `config`. */
export function buildDiagram(config: GatewayConfig): Diagram {
  const groups: DiagramGroup[] = [];
  const nodes: DiagramNode[] = [];
  const edges: DiagramEdge[] = [];
  const node = (id: string, kind: NodeKind, lines: string[], group?: string): string => {
    nodes.push({ id, kind, lines, ...(group ? { group } : {}) });
    return id;
  };
  const edge = (from: string, to: string, kind: EdgeKind, label?: string, key?: string): void => {
    edges.push({ from, to, kind, ...(label !== undefined ? { label } : {}), ...(key !== undefined ? { key } : {}) });
  };

  const stages = config.pipeline.stages.map(entryOf);
  const observer = config.pipeline.streamObserver;
  const names = new Set(stages.map((s) => s.name));

  // Callers and Envoy.
  node('callers', 'client', ['calling services', 'OpenAI / Anthropic SDKs']);
  groups.push({ id: 'envoy', label: 'Envoy or Istio sidecar' });
  node('envoy_extproc', 'envoy', ['ext_proc filter', 'router stream, once per request'], 'envoy');
  if (observer) node('envoy_observer', 'envoy', ['ext_proc filter', 'observability_mode, send-and-go'], 'envoy');
  node('envoy_router', 'envoy', ['router', names.has('route') ? 'cluster_header x-gateway-cluster' : 'default chain cluster'], 'envoy');
  node('envoy_attempt', 'envoy', ['upstream ext_proc filter', 'per attempt'], 'envoy');
  edge('callers', 'envoy_extproc', 'flow', 'HTTP / SSE', 'requests');
  edge('envoy_extproc', observer ? 'envoy_observer' : 'envoy_router', 'flow');
  if (observer) edge('envoy_observer', 'envoy_router', 'flow');
  edge('envoy_router', 'envoy_attempt', 'flow', 'each try');

  // The ext_proc server: stages by filter, in config order.
  groups.push({ id: 'gateway', label: 'ext_proc server (this project)' });
  const roles: { id: string; label: string; from: string; edgeLabel: string; list: typeof stages }[] = [
    { id: 'router_stages', label: 'router filter stages', from: 'envoy_extproc', edgeLabel: 'gRPC stream per request', list: stages.filter((s) => !ATTEMPT_STAGES.has(s.name)) },
    { id: 'attempt_stages', label: 'attempt filter stages', from: 'envoy_attempt', edgeLabel: 'gRPC stream per try', list: stages.filter((s) => ATTEMPT_STAGES.has(s.name)) },
  ];
  const stageIds = new Map<string, string>();
  for (const role of roles) {
    if (role.list.length === 0) continue;
    groups.push({ id: role.id, label: role.label, parent: 'gateway' });
    let prev = role.from;
    role.list.forEach((s, i) => {
      const id = node(nodeId('stage', s.name), 'stage', stageLines(s.name, s.options), role.id);
      stageIds.set(s.name, id);
      edge(prev, id, i === 0 ? 'grpc' : 'flow', i === 0 ? role.edgeLabel : undefined, `stage:${s.name}`);
      prev = id;
    });
  }
  if (observer) {
    for (const s of stages) if (OBSERVING_STAGES.has(s.name)) edge('envoy_observer', stageIds.get(s.name)!, 'grpc', 'response chunks');
  }
  if (stages.length === 0) {
    node('passthrough', 'stage', ['no stages', 'pass-through'], 'gateway');
    edge('envoy_extproc', 'passthrough', 'grpc', 'gRPC stream per request');
  }

  // Routing rules → chains → providers, from the catalog and the rendered chain clusters.
  const catalog = buildCatalog(config);
  const clusters = chainClusters(config);
  const routeStage = stageIds.get('route');
  if (catalog.routes.length > 0) groups.push({ id: 'routes', label: routeStage ? 'routing rules, first match wins' : 'routes (no route stage: Envoy runs the default chain)' });
  const usedModels = new Set<string>();
  catalog.routes.forEach((r: CompiledRoute, i) => {
    const route = config.routes[i]!;
    const id = node(nodeId('route', r.name), 'route', [`${i + 1}. ${r.name}`, clusters.find((c) => c.route === r.name)?.name ?? r.clusters[0] ?? ''], 'routes');
    const active = routeStage !== undefined || i === catalog.routes.length - 1;
    edge('envoy_router', id, active ? 'flow' : 'control', matchLabel(route), `route:${r.name}`);
    groups.push({ id: nodeId('chain', r.name), label: `chain of ${r.name}` });
    const triggers = triggerLabel(route);
    r.steps.forEach((s, k) => {
      usedModels.add(s.model);
      const stepId = node(nodeId('step', r.name, k), 'model', [s.model, s.upstreamName !== s.model ? `${s.upstreamName}, priority ${k}` : `priority ${k}`], nodeId('chain', r.name));
      if (k === 0) edge(id, stepId, 'flow', undefined, `first:${r.name}`);
      else edge(nodeId('step', r.name, k - 1), stepId, 'fallback', `${ordinal(k)} fallback\non ${triggers}`, `fallback:${r.name}:${k - 1}`);
      edge(stepId, nodeId('provider', s.provider), 'flow', undefined, `serve:${r.name}:${k}`);
    });
  });
  if (routeStage) edge(routeStage, 'envoy_router', 'control', 'x-gateway-cluster, retry headers');

  groups.push({ id: 'providers', label: 'providers' });
  for (const [name, p] of Object.entries(config.providers)) node(nodeId('provider', name), 'provider', [name, `${p.api} API, cluster ${p.cluster}`], 'providers');
  // Models no route uses: reachable only when pinned to their provider's cluster.
  for (const [name, m] of Object.entries(config.models)) {
    if (usedModels.has(name)) continue;
    const id = node(nodeId('model', name), 'model', [name, 'in no chain'], 'providers');
    edge(id, nodeId('provider', m.provider), 'data', 'pinned');
  }

  // Backends.
  const byName = new Map(stages.map((s) => [s.name, s.options]));
  const redisUsers: string[] = [];
  if (obj(byName.get('rate-limit'))['backend'] === 'redis') redisUsers.push('rate-limit');
  if (obj(obj(byName.get('route'))['cooldown'])['store'] === 'redis') redisUsers.push('route');
  if (redisUsers.length) {
    node('redis', 'store', ['Redis', redisUsers.map((u) => (u === 'route' ? 'cooldowns' : 'limits, budgets')).join(', ')]);
    for (const u of redisUsers) edge(stageIds.get(u)!, 'redis', 'data', u === 'route' ? 'cooldowns' : 'counters', `redis:${u}`);
  }
  const storeName = (kind: unknown, what: string): string => (kind === 'postgres' ? `Postgres + pgvector` : `PGlite embedded`) + `, ${what}`;
  for (const s of stages) {
    if (!CACHE_STAGES.has(s.name)) continue;
    const kind = obj(s.options['store'])['kind'];
    node('cache_store', 'store', ['semantic cache', storeName(kind, 'vectors')]);
    edge(stageIds.get(s.name)!, 'cache_store', 'data', 'lookup / write', 'cache');
  }
  const usage = byName.get('usage');
  if (usage) {
    const u = usage;
    const ledger = u['ledger'] === false ? undefined : obj(u['ledger']);
    const metrics = obj(u['metrics']);
    const usageId = stageIds.get('usage')!;
    if (ledger) {
      node('ledger', 'store', ['usage ledger', storeName(obj(ledger['store'])['kind'] ?? 'embedded', 'usage_daily_by_caller / _by_model')]);
      edge(usageId, 'ledger', 'data', 'record per request', 'ledger');
      node('cost_report', 'observability', ['cost report', 'report: per caller, model, day']);
      edge('ledger', 'cost_report', 'data');
    }
    if (metrics['prometheus'] !== undefined || metrics['otlp'] !== undefined) {
      node('metrics', 'observability', ['metrics', 'OpenTelemetry GenAI + gateway counters']);
      edge(usageId, 'metrics', 'data', undefined, 'metrics');
      if (metrics['prometheus'] !== undefined) {
        node('prometheus', 'observability', ['Prometheus', 'scrapes /metrics']);
        node('grafana', 'observability', ['Grafana', 'dashboard']);
        edge('metrics', 'prometheus', 'data');
        edge('prometheus', 'grafana', 'data');
      }
      if (metrics['otlp'] !== undefined) {
        node('otel', 'observability', ['OpenTelemetry collector', 'OTLP/HTTP']);
        edge('metrics', 'otel', 'data');
      }
    }
    if (obj(u['tracing'])['otlp'] !== undefined) {
      if (!nodes.some((n) => n.id === 'otel')) node('otel', 'observability', ['OpenTelemetry collector', 'OTLP/HTTP']);
      edge(usageId, 'otel', 'data', 'spans');
    }
  }
  const admin = adminOf(config);
  if (admin.enabled) {
    // No port: it may come from the environment, and the drawing must not.
    node('admin', 'observability', ['admin page', 'read-only, live counts']);
    if (nodes.some((n) => n.id === 'ledger')) edge('ledger', 'admin', 'data');
  }
  return { groups, nodes, edges };
}
