/**
 * Live counts from usage records: per route, fallbacks per chain step (only consecutive steps of
 * the record's route), answers served per step, cache hit rate, PII, 429s; and how they land on
 * the diagram's arrows. The page escapes every value it shows.
 */
import { describe, expect, it } from 'vitest';
import { LiveCounts, edgeCount } from '../../extproc/admin/counts.js';
import { renderPage } from '../../extproc/admin/page.js';
import { parseConfig } from '../../extproc/config/load.js';
import { buildDiagram, toDot, toMermaid } from '../../extproc/diagram/index.js';
import type { UsageRecord } from '../../extproc/usage/record.js';

const config = parseConfig({
  pipeline: { stages: ['parse-request', 'identity', 'pii', 'route', { name: 'rate-limit', limits: [{ scope: 'caller', requestsPerMinute: 1 }] }, 'usage'] },
  providers: { openai: { api: 'openai', cluster: 'openai' }, anthropic: { api: 'anthropic', cluster: 'anthropic' }, mistral: { api: 'mistral', cluster: 'mistral' } },
  models: { a: { provider: 'anthropic' }, b: { provider: 'openai' }, c: { provider: 'mistral' } },
  routes: [
    { name: 'vip', match: { caller: 'vip-*' }, model: 'a', fallback: ['b', 'c'] },
    { name: 'main', model: 'b', fallback: ['c'] },
  ],
});

function rec(p: Partial<UsageRecord>): UsageRecord {
  return {
    requestId: Math.random().toString(36), traceId: undefined, startedAt: Date.now(), caller: 'x', route: undefined, api: 'chat',
    requestedModel: undefined, servedModel: undefined, provider: undefined, attempts: 1, fallbackPath: [], stream: false,
    tokens: { input: 1, output: 1, cachedInput: 0, cacheWrite: 0, reasoning: 0 }, estimated: false, latencyMs: 1, ttftMs: undefined,
    costMicros: 1, priced: true, cache: undefined, savedMicros: 0, pii: {}, rateLimit: 'allow', rateLimitName: undefined, status: 200,
    outcome: 'completed', errorClass: undefined, ...p,
  };
}

describe('LiveCounts', () => {
  const counts = new LiveCounts(() => config);
  counts.add(rec({ route: 'vip', servedModel: 'a', cache: 'miss', pii: { EMAIL: 2, PHONE: 1 } }));
  counts.add(rec({ route: 'vip', servedModel: 'c', fallbackPath: ['a', 'b', 'c'], attempts: 3, cache: 'hit' }));
  counts.add(rec({ route: 'vip', servedModel: 'b', fallbackPath: ['a', 'b'], attempts: 2, cache: 'miss' }));
  // Started on step 1 (step 0 cooled down), fell over to step 2.
  counts.add(rec({ route: 'vip', servedModel: 'c', fallbackPath: ['b', 'c'], attempts: 2 }));
  counts.add(rec({ route: 'main', servedModel: 'c', fallbackPath: ['b', 'c'], attempts: 2, cache: 'miss' }));
  counts.add(rec({ route: undefined, rateLimit: 'reject', status: 429, outcome: 'immediate', errorClass: 'rate_limited' }));
  counts.add(rec({ route: 'main', servedModel: 'c', status: 429, outcome: 'upstream-error', errorClass: 'upstream_rate_limited', fallbackPath: ['b', 'c'] }));
  const s = counts.snapshot();

  it('counts per route, per fallback step and per serving step', () => {
    expect(s.requests).toBe(7);
    expect(s.byRoute).toEqual({ vip: 4, main: 2 });
    expect(s.fallbacks).toEqual({ 'vip:0': 2, 'vip:1': 2, 'main:0': 2 });
    // A 429 answer served nothing.
    expect(s.served).toEqual({ 'vip:0': 1, 'vip:1': 1, 'vip:2': 2, 'main:1': 1 });
  });

  it('counts cache hit rate, PII and both kinds of 429', () => {
    expect([s.cacheHits, s.cacheLookups]).toEqual([1, 4]);
    expect(s.piiRedacted).toBe(3);
    expect(s.rateLimited).toBe(1);
    expect(s.upstream429).toBe(1);
    expect(s.errors).toBe(2);
  });

  it('puts the counts on the matching arrows of the diagram', () => {
    const d = buildDiagram(config);
    const annotate = (key: string): string | undefined => edgeCount(s, key);
    const dot = toDot(d, annotate);
    expect(dot).toMatch(/step__vip__0 -> step__vip__1 \[label="1st fallback\\non [^"]*\\n2 fell over"/);
    expect(dot).toMatch(/step__main__0 -> step__main__1 \[label="1st fallback\\non [^"]*\\n2 fell over"/);
    expect(dot).toMatch(/step__vip__2 -> provider__mistral \[label="2 served"/);
    expect(dot).toContain('7 requests');
    expect(dot).toContain('3 PII redacted');
    expect(dot).toContain('1 × 429');
    expect(toMermaid(d, annotate)).toContain('4 req');
    // No counts: no count text.
    expect(toDot(d)).not.toContain('fell over');
  });

  it('attributes records to the default route when no route stage names one', () => {
    const noRouteStage = parseConfig({ ...config, pipeline: { stages: ['usage'] } });
    const c = new LiveCounts(() => noRouteStage);
    c.add(rec({ servedModel: 'c', fallbackPath: ['b', 'c'] }));
    expect(c.snapshot().byRoute).toEqual({ main: 1 });
    expect(c.snapshot().fallbacks).toEqual({ 'main:0': 1 });
  });
});

describe('admin page HTML', () => {
  it('escapes every value', () => {
    const html = renderPage({
      version: '1', generatedAt: 'now', stages: ['usage'], routes: 1, counts: new LiveCounts(() => config).snapshot(),
      diagram: { mermaid: 'flowchart LR\n a["<script>"]', problem: 'no dot' },
      ledger: {
        from: '2026-01-01', to: '2026-01-30',
        tables: {
          caller: { columns: ['caller', 'requests', 'cost_micros'], rows: [['<img src=x onerror=alert(1)>', 1, 5]], money: new Set(['cost_micros']) },
          model: { columns: ['model'], rows: [], money: new Set() },
          day: { columns: ['day'], rows: [], money: new Set() },
        },
        recent: [],
      },
    });
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('data-micros="5"');
  });
});
