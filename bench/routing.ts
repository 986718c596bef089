/**
 * Routing decision cost: decideRoute over a mix of requests (default chain, rule hits, cooled
 * steps, a 2 KB and a 40 KB prompt) against the shipped config's catalog plus the rule fixture.
 * Prints p50/p99 per request in µs. Target: ≤ 50 µs. Run: npx tsx bench/routing.ts
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../extproc/config/load.js';
import { buildCatalog } from '../extproc/routing/catalog.js';
import { decideRoute, type RouteContext, type RouteRequest } from '../extproc/routing/decide.js';
import { LatencyEwma } from '../extproc/routing/latency.js';
import { catalogConfig } from '../test/routing/fixtures.js';
import { parseConfig } from '../extproc/config/load.js';

const shipped = buildCatalog(parseConfigText(readFileSync(join(import.meta.dirname, '../config/gateway.yaml'), 'utf8'), {}));
const rules = buildCatalog(parseConfig(catalogConfig));
const latency = new LatencyEwma();
latency.observe('gpt-4o-mini', 400);
latency.observe('mistral-large', 900);

const msg = (n: number) => ({ messages: [{ role: 'system', content: 'You are helpful.' }, { role: 'user', content: 'x'.repeat(n) }] });
const small = msg(2000);
const large = { ...msg(40_000), tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }] };
const headers = (h: Record<string, string>) => (n: string) => h[n];
const cases: [RouteRequest, RouteContext, typeof rules][] = [
  [{ model: 'claude-opus-4', body: small }, { caller: 'svc-a', headers: headers({}) }, shipped],
  [{ model: 'gpt-4o', body: small }, { caller: 'svc-a', headers: headers({}), cooled: new Set(['anthropic/claude-opus-4']) }, rules],
  [{ model: 'fast', body: small }, { caller: 'svc-b', headers: headers({}) }, rules],
  [{ model: undefined, body: large }, { caller: 'spiffe://cluster.local/ns/web/sa/x', headers: headers({ 'x-max-latency-ms': '500' }), latency }, rules],
  [{ model: 'gpt-4o', body: large }, { caller: 'svc-c', headers: headers({ 'x-model-preference': 'smart' }), budgetUsedFraction: 0.5 }, rules],
];

const N = 20_000;
for (let i = 0; i < 5_000; i++) for (const [r, c, cat] of cases) decideRoute(r, c, cat); // warm-up
const samples: number[] = [];
let sink = 0;
for (let i = 0; i < N; i++) {
  const [r, c, cat] = cases[i % cases.length]!;
  const t0 = process.hrtime.bigint();
  const d = decideRoute(r, c, cat);
  samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  if (d.ok) sink += d.chain.length;
}
samples.sort((a, b) => a - b);
const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!;
console.log(`routing decision, ${N} requests over ${cases.length} cases (prompt summary included; ${sink > 0 ? 'ok' : '?'}):`);
console.log(`  p50 ${pct(50).toFixed(2)} µs   p90 ${pct(90).toFixed(2)} µs   p99 ${pct(99).toFixed(2)} µs   max ${samples[samples.length - 1]!.toFixed(1)} µs   (target p50 ≤ 50 µs)`);

// ---- the route stage around the decision: cooldown read (memory), headers, carried metadata,
// slot; parse-request's JSON parse excluded (it runs for every stage). The stage as the server
// builds it, from the routing tests' config.
{
  const { StreamExchange } = await import('../extproc/pipeline/exchange.js');
  const { HeaderView } = await import('../extproc/pipeline/headers.js');
  const { requestSummary } = await import('../extproc/stages/parseRequest.js');
  const { createLogger } = await import('../extproc/telemetry/logger.js');
  const { pipelinesOf, routingConfig } = await import('../test/e2e/routingHelpers.js');
  const { Pipeline } = await import('../extproc/pipeline/pipeline.js');
  const { renderClientError } = await import('../extproc/errors.js');
  const router = pipelinesOf(routingConfig()).router;
  const routeOnly = new Pipeline(router.stages.filter((s) => s.name === 'route'), { onInvalidRequest: 'continue', renderError: renderClientError });
  const log = createLogger('error');
  const hv = new HeaderView([
    { key: ':method', raw_value: Buffer.from('POST') },
    { key: ':path', raw_value: Buffer.from('/v1/chat/completions') },
    { key: 'content-type', raw_value: Buffer.from('application/json') },
  ]);
  const bodies = [small, large, { ...small, model: 'fast' }, { ...small, model: 'claude-opus-4' }];
  const chunk = { bytes: Buffer.alloc(0), endOfStream: true };
  const stageSamples: number[] = [];
  for (let i = 0; i < 25_000; i++) {
    const body = bodies[i % bodies.length] as Record<string, unknown>;
    const x = new StreamExchange(log, 1 << 20);
    x.requestHeaders = hv;
    x.set(requestSummary, { model: typeof body['model'] === 'string' ? body['model'] : undefined, stream: false, body });
    const t0 = process.hrtime.bigint();
    const out = routeOnly.run('requestBody', x, chunk);
    if (i >= 5_000) stageSamples.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (out instanceof Promise) throw new Error('the memory-cooldown route stage must answer synchronously');
    sink += out.setHeaders.size;
  }
  stageSamples.sort((a, b) => a - b);
  const sp = (p: number) => stageSamples[Math.min(stageSamples.length - 1, Math.floor((p / 100) * stageSamples.length))]!;
  console.log(`route stage requestBody (decision + cooldown read + headers + carry), ${stageSamples.length} requests:`);
  console.log(`  p50 ${sp(50).toFixed(2)} µs   p90 ${sp(90).toFixed(2)} µs   p99 ${sp(99).toFixed(2)} µs`);
}
