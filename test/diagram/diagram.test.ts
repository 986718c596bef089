/**
 * The drawing is complete: for config/gateway.yaml, each example config and a synthetic config
 * with several routes, every route, every chain step (model), every fallback trigger and every
 * stage appears in the Mermaid and DOT output, the fallback arrows follow the chain order, and
 * Graphviz draws the DOT into an SVG holding the same names.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../extproc/config/load.js';
import type { GatewayConfig } from '../../extproc/config/schema.js';
import { buildDiagram, renderGraphviz, toDot, toMermaid, type Diagram } from '../../extproc/diagram/index.js';
import { routeName } from '../../extproc/routing/catalog.js';

const root = join(import.meta.dirname, '../..');
const env = { OPENAI_API_KEY: 'k', ANTHROPIC_API_KEY: 'k', MISTRAL_API_KEY: 'k', REDIS_URL: 'redis://127.0.0.1:6379', USAGE_DATA_DIR: '/tmp/x', DATABASE_URL: 'postgres://u:secretpw@db/x' };

/** Several routes, every kind of match, triggers that differ per route, and backends of each kind. */
const synthetic = {
  pipeline: {
    streamObserver: true,
    stages: [
      'parse-request',
      { name: 'identity', sources: ['xfcc', 'header'] },
      { name: 'pii', restore: true },
      { name: 'semantic-cache', store: { kind: 'postgres', url: 'postgres://u:secretpw@db/cache' } },
      { name: 'route', cooldown: { store: 'redis', redisUrl: 'redis://secret@r:6379' } },
      { name: 'rate-limit', backend: 'redis', redis: { url: 'redis://secret@r:6379' }, limits: [{ scope: 'caller', requestsPerMinute: 10 }] },
      'translate',
      { name: 'usage', ledger: { store: { kind: 'postgres', url: 'postgres://u:secretpw@db/x' } }, metrics: { prometheus: { port: 9464 } } },
    ],
  },
  providers: {
    openai: { api: 'openai', cluster: 'openai' },
    anthropic: { api: 'anthropic', cluster: 'anthropic' },
    mistral: { api: 'mistral', cluster: 'mistral' },
    azure: { api: 'openai', cluster: 'azure_openai', host: 'example.openai.azure.com' },
  },
  models: {
    'claude-opus-4': { provider: 'anthropic', upstreamName: 'claude-opus-4-20250514', aliases: ['smart'], costTier: 'premium' },
    'gpt-4o': { provider: 'openai', costTier: 'standard' },
    'gpt-4o-azure': { provider: 'azure', upstreamName: 'gpt-4o' },
    'mistral-large': { provider: 'mistral', aliases: ['cheap'], costTier: 'cheap' },
    'o3-mini "quoted" <model>': { provider: 'openai' },
  },
  routes: [
    { name: 'batch-team', match: { caller: ['spiffe://corp/ns/batch/*'] }, model: 'cheap', fallback: ['gpt-4o-azure'], retryOn: [429, 503, 'connect-failure'] },
    { name: 'hard-prompts', match: { complexity: { min: 0.7 } }, model: 'smart', fallback: ['gpt-4o', 'gpt-4o-azure', 'mistral-large'], retryOn: [408, 429, 500, 'reset', 'per-try-timeout'], perTryTimeoutMs: 30000 },
    { name: 'asked-cheap', match: { preference: ['cheap'], costTier: 'cheap' }, model: 'mistral-large', retryOn: [502] },
    { name: 'over-budget', match: { budgetUsedAbove: 0.9 }, model: 'mistral-large', fallback: ['gpt-4o'], retryOn: [409, 504] },
    { name: 'default', model: 'gpt-4o', fallback: ['gpt-4o-azure', 'claude-opus-4'] },
  ],
};

async function configs(): Promise<[string, GatewayConfig][]> {
  const files = ['config/gateway.yaml', ...readdirSync(join(root, 'config/examples')).filter((f) => f.endsWith('.yaml')).map((f) => `config/examples/${f}`)];
  const out: [string, GatewayConfig][] = [];
  for (const f of files) out.push([f, await loadConfigFile(join(root, f), env)]);
  out.push(['synthetic', parseConfig(synthetic)]);
  return out;
}

const stageName = (s: GatewayConfig['pipeline']['stages'][number]): string => (typeof s === 'string' ? s : s.name);

/** Every name a reader must find, with the chain steps of each route. */
function expectations(config: GatewayConfig): { names: string[]; triggersByRoute: [string, string[]][] } {
  const names = new Set<string>();
  const triggersByRoute: [string, string[]][] = [];
  config.routes.forEach((r, i) => {
    names.add(routeName(r, i));
    for (const step of [r.model, ...r.fallback]) names.add(config.models[step] ? step : Object.entries(config.models).find(([, m]) => m.aliases.includes(step))![0]);
    if (r.fallback.length > 0) triggersByRoute.push([routeName(r, i), r.retryOn.map(String)]);
  });
  for (const m of Object.keys(config.models)) names.add(m);
  for (const p of Object.keys(config.providers)) names.add(p);
  for (const s of config.pipeline.stages) names.add(stageName(s));
  return { names: [...names], triggersByRoute };
}

/** Mermaid's entity codes back to text, `<br/>` to newlines. */
function mermaidText(src: string): string {
  return src.replace(/<br\/>/g, '\n').replace(/#quot;/g, '"').replace(/#lt;/g, '<').replace(/#gt;/g, '>').replace(/#35;/g, '#');
}
/** DOT escapes back to text. */
function dotText(src: string): string {
  return src.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
}

function fallbackEdges(d: Diagram, route: string): string[] {
  return d.edges.filter((e) => e.kind === 'fallback' && e.key?.startsWith(`fallback:${route}:`)).map((e) => e.label ?? '');
}

describe('diagram completeness', async () => {
  const all = await configs();
  it.each(all)('%s: every route, model, provider and stage is drawn (Mermaid and DOT)', (_, config) => {
    const d = buildDiagram(config);
    const mermaid = mermaidText(toMermaid(d));
    const dot = dotText(toDot(d));
    for (const name of expectations(config).names) {
      expect(mermaid, name).toContain(name);
      expect(dot, name).toContain(name);
    }
  });

  it.each(all)('%s: each chain is drawn step by step with its triggers on every fallback arrow', (_, config) => {
    const d = buildDiagram(config);
    const mermaid = mermaidText(toMermaid(d));
    const { triggersByRoute } = expectations(config);
    config.routes.forEach((r, i) => {
      const name = routeName(r, i);
      const steps = [r.model, ...r.fallback];
      const labels = fallbackEdges(d, name);
      expect(labels).toHaveLength(steps.length - 1);
      const triggers = triggersByRoute.find(([n]) => n === name)?.[1] ?? [];
      labels.forEach((label, k) => {
        expect(label).toMatch(new RegExp(`^${['1st', '2nd', '3rd', '4th', '5th'][k]} fallback`));
        for (const t of triggers) expect(label.split(/\s/)).toContain(t);
        expect(mermaid).toContain(label);
      });
      // Arrows go step k → step k+1 of this route, in order.
      const stepEdges = d.edges.filter((e) => e.kind === 'fallback' && e.key?.startsWith(`fallback:${name}:`));
      stepEdges.forEach((e, k) => {
        const from = d.nodes.find((n) => n.id === e.from)!;
        const to = d.nodes.find((n) => n.id === e.to)!;
        expect(from.lines[0]).toBe(config.models[steps[k]!] ? steps[k] : Object.entries(config.models).find(([, m]) => m.aliases.includes(steps[k]!))![0]);
        expect(to.lines[0]).toBe(config.models[steps[k + 1]!] ? steps[k + 1] : Object.entries(config.models).find(([, m]) => m.aliases.includes(steps[k + 1]!))![0]);
      });
    });
  });

  it.each(all)('%s: Graphviz draws the DOT as an SVG naming every route and model', async (_, config) => {
    const svg = (await renderGraphviz(toDot(buildDiagram(config)), 'svg')).toString('utf8');
    expect(svg.startsWith('<?xml') || svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('</svg>');
    const text = svg.replace(/&#45;/g, '-').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    for (const r of config.routes.map(routeName)) expect(text).toContain(r);
    for (const m of Object.keys(config.models)) expect(text).toContain(m);
  });
});

describe('diagram of the synthetic config', () => {
  const config = parseConfig(synthetic);
  const d = buildDiagram(config);
  const mermaid = toMermaid(d);

  it('draws the stages in config order, each filter on its own stream', () => {
    const router = d.nodes.filter((n) => n.group === 'router_stages').map((n) => n.lines[0]);
    expect(router).toEqual(['parse-request', 'identity', 'pii', 'semantic-cache', 'route', 'rate-limit', 'usage']);
    expect(d.nodes.filter((n) => n.group === 'attempt_stages').map((n) => n.lines[0])).toEqual(['translate']);
    // Consecutive stages are linked in order.
    for (let i = 1; i < router.length; i++) {
      const from = d.nodes.find((n) => n.lines[0] === router[i - 1] && n.kind === 'stage')!.id;
      const to = d.nodes.find((n) => n.lines[0] === router[i] && n.kind === 'stage')!.id;
      expect(d.edges.some((e) => e.from === from && e.to === to)).toBe(true);
    }
    // streamObserver: the observability filter feeds the observing stages.
    expect(d.nodes.some((n) => n.id === 'envoy_observer')).toBe(true);
    expect(d.edges.filter((e) => e.from === 'envoy_observer' && e.label === 'response chunks').length).toBe(2);
  });

  it('labels each rule with its match conditions, in order', () => {
    const labels = d.edges.filter((e) => e.key?.startsWith('route:')).map((e) => e.label);
    expect(labels).toEqual(['caller spiffe://corp/ns/batch/*', 'complexity ≥ 0.7', 'preference cheap & costTier cheap', 'budget used > 0.9', 'default']);
    expect(d.nodes.filter((n) => n.kind === 'route').map((n) => n.lines[0])).toEqual(['1. batch-team', '2. hard-prompts', '3. asked-cheap', '4. over-budget', '5. default']);
    expect(mermaid).toContain('chain_hard-prompts_from_0');
  });

  it('draws the backends the stages use, and no secret or URL', () => {
    const byId = new Map(d.nodes.map((n) => [n.id, n.lines.join(' ')]));
    expect(byId.get('redis')).toContain('Redis');
    expect(byId.get('cache_store')).toContain('Postgres + pgvector');
    expect(byId.get('ledger')).toContain('Postgres');
    for (const id of ['metrics', 'prometheus', 'grafana', 'cost_report']) expect(byId.has(id)).toBe(true);
    for (const text of [mermaid, toDot(d)]) {
      expect(text).not.toContain('secret');
      expect(text).not.toContain('redis://');
      expect(text).not.toContain('postgres://');
    }
  });

  it('draws embedded backends and no Redis for the embedded usage example', async () => {
    const d2 = buildDiagram(await loadConfigFile(join(root, 'config/examples/usage.yaml'), env));
    const ids = new Set(d2.nodes.map((n) => n.id));
    expect(ids.has('redis')).toBe(false);
    expect(d2.nodes.find((n) => n.id === 'ledger')!.lines.join(' ')).toContain('PGlite');
    expect(ids.has('envoy_observer')).toBe(false);
  });

  it('escapes names so a quote or bracket in a model name cannot break either syntax', () => {
    expect(mermaid).toContain('o3-mini #quot;quoted#quot; #lt;model#gt;');
    expect(toDot(d)).toContain('o3-mini \\"quoted\\" <model>');
  });
});
