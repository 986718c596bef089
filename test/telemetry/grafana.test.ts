/**
 * The Grafana dashboard asks only for what the gateway exports: every metric name in its
 * PromQL queries, and every label it groups or filters by, appears on the gateway's Prometheus
 * endpoint once records exercising each metric (fallback, PII, cache hit and miss, rate-limit
 * rejection, error, stream) went through.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../extproc/telemetry/metrics.js';
import { sampleRecord } from '../usage/fixtures.js';

const dashboardDir = path.join(import.meta.dirname, '../../deploy/grafana/dashboards');

/** Exported series: metric name → label names seen on it. */
let exported: Map<string, Set<string>>;
let metrics: GatewayMetrics;

beforeAll(async () => {
  metrics = new GatewayMetrics({ prometheus: { port: 0, host: '127.0.0.1', path: '/metrics' } });
  const ep = (await metrics.prometheus)!;
  metrics.record(sampleRecord({ fallbackPath: ['claude-opus-4', 'gpt-4o'], pii: { EMAIL: 1 }, cache: 'miss' }));
  metrics.record(sampleRecord({ cache: 'hit', savedMicros: 100 }));
  metrics.record(sampleRecord({ rateLimit: 'reject', rateLimitName: 'tokens', errorClass: 'rate_limited', status: 429 }));
  const text = await (await fetch(`http://127.0.0.1:${ep.port}${ep.path}`)).text();
  exported = new Map();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) continue;
    const labels = exported.get(m[1]!) ?? new Set<string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!);
    exported.set(m[1]!, labels);
  }
});
afterAll(() => metrics?.close());

interface Query {
  panel: string;
  expr: string;
}
function queries(): Query[] {
  const out: Query[] = [];
  for (const f of fs.readdirSync(dashboardDir).filter((n) => n.endsWith('.json'))) {
    const d = JSON.parse(fs.readFileSync(path.join(dashboardDir, f), 'utf8')) as { panels: { title: string; targets?: { expr?: string }[] }[] };
    for (const p of d.panels) for (const t of p.targets ?? []) if (t.expr) out.push({ panel: `${f}: ${p.title}`, expr: t.expr });
  }
  return out;
}

/** Metric selectors in a PromQL expression, with the labels matched in braces, and the grouping labels. */
function parse(expr: string): { metrics: { name: string; labels: string[] }[]; groupBy: string[] } {
  const groupBy = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
  const stripped = expr.replace(/\b(?:by|without)\s*\([^)]*\)/g, ' ');
  const found: { name: string; labels: string[] }[] = [];
  for (const m of stripped.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\[|\)|$|\s|\{)/g)) {
    const name = m[1]!;
    if (!/^(gen_ai|gateway)_/.test(name)) continue;
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!);
    found.push({ name, labels });
  }
  return { metrics: found, groupBy };
}

describe('Grafana dashboard (deploy/grafana/dashboards)', () => {
  it('has panels for cost, tokens, latency and TTFT percentiles, cache hit rate, fallbacks, rate limits, PII', () => {
    const titles = queries().map((q) => q.panel.toLowerCase()).join('\n');
    for (const word of ['cost per caller', 'cost per model', 'cost per day', 'tokens', 'latency', 'first token', 'cache hit rate', 'fallbacks', 'rate-limit', 'pii']) expect(titles).toContain(word);
  });

  it('queries only metric names and labels the gateway exports', () => {
    const qs = queries();
    expect(qs.length).toBeGreaterThan(10);
    const problems: string[] = [];
    let seen = 0;
    for (const q of qs) {
      const { metrics: ms, groupBy } = parse(q.expr);
      if (ms.length === 0) problems.push(`${q.panel}: no gateway metric in "${q.expr}"`);
      for (const m of ms) {
        seen++;
        const labels = exported.get(m.name);
        if (!labels) {
          problems.push(`${q.panel}: metric ${m.name} is not exported`);
          continue;
        }
        for (const l of [...m.labels, ...groupBy]) if (!labels.has(l)) problems.push(`${q.panel}: ${m.name} has no label ${l}`);
      }
    }
    expect(problems).toEqual([]);
    expect(seen).toBeGreaterThan(10);
  });

  it('the check itself catches a name the gateway does not export', () => {
    const { metrics: ms } = parse('sum by (gateway_caller) (rate(gateway_cost_dollars_total[5m]))');
    expect(ms.map((m) => m.name)).toEqual(['gateway_cost_dollars_total']);
    expect(exported.has('gateway_cost_dollars_total')).toBe(false);
  });
});
