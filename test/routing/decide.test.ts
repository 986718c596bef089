/** The routing decision: each rule kind, chain start and end, bad input. */
import { describe, expect, it } from 'vitest';
import { buildCatalog } from '../../extproc/routing/catalog.js';
import { decideRoute, type RouteContext, type RouteDecision, type RouteRequest } from '../../extproc/routing/decide.js';
import { LatencyEwma } from '../../extproc/routing/latency.js';
import { config } from './fixtures.js';

const catalog = buildCatalog(config());
const body = (text = 'hi', extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content: text }], ...extra });

function decide(req: Partial<RouteRequest> & { headers?: Record<string, string> } = {}, ctx: Partial<RouteContext> = {}, cat = catalog) {
  const h = req.headers ?? {};
  return decideRoute({ model: req.model, body: req.body ?? body() }, { caller: 'someone', headers: (n) => h[n], ...ctx }, cat);
}
function ok(d: ReturnType<typeof decide>): RouteDecision {
  if (!d.ok) throw new Error(`refused: ${d.message}`);
  return d;
}

describe('decideRoute rule kinds', () => {
  it('default: a request no rule takes runs the whole default chain', () => {
    const d = ok(decide());
    expect(d.route.name).toBe('default-chain');
    expect(d.chain.map((s) => s.model)).toEqual(['claude-opus-4', 'gpt-4o', 'claude-sonnet-4', 'mistral-large']);
    expect(d.cluster).toBe('llm_chain');
    expect(d.headers).toEqual({
      'x-gateway-cluster': 'llm_chain',
      'x-envoy-max-retries': '3',
      'x-envoy-retry-on': 'connect-failure,refused-stream,reset,retriable-status-codes',
      'x-envoy-retriable-status-codes': '429,500,502,503,504,529',
      'x-envoy-upstream-rq-per-try-timeout-ms': '30000',
    });
  });

  it('caller glob', () => {
    expect(ok(decide({}, { caller: 'spiffe://cluster.local/ns/shop/sa/checkout' })).route.name).toBe('checkout');
    expect(ok(decide({}, { caller: 'spiffe://cluster.local/ns/shopping/sa/x' })).route.name).toBe('default-chain');
  });

  it('x-model-preference through an alias; unknown preferences are ignored', () => {
    expect(ok(decide({ headers: { 'x-model-preference': 'smart' } })).route.name).toBe('preferred-smart');
    expect(ok(decide({ headers: { 'x-model-preference': 'claude-opus-4' } })).route.name).toBe('preferred-smart');
    expect(ok(decide({ headers: { 'x-model-preference': 'whatever' } })).route.name).toBe('default-chain');
  });

  it('body model by alias or name', () => {
    const d = ok(decide({ model: 'fast' }));
    expect([d.route.name, d.requested]).toEqual(['asked-fast', 'gpt-4o-mini']);
    expect(ok(decide({ model: 'gpt-4o-mini' })).route.name).toBe('asked-fast');
  });

  it('cost tier of the model asked for', () => {
    // mistral-small is cheap but not matched by asked-fast's model list.
    expect(ok(decide({ model: 'mistral-small' })).route.name).toBe('tier-cheap');
    expect(ok(decide({ model: 'gpt-4o' })).route.name).toBe('default-chain');
  });

  it('budget used above a fraction', () => {
    expect(ok(decide({}, { budgetUsedFraction: 0.81 })).route.name).toBe('over-budget');
    expect(ok(decide({}, { budgetUsedFraction: 0.8 })).route.name).toBe('default-chain');
    expect(ok(decide({})).route.name).toBe('default-chain');
    const d = ok(decide({}, { budgetUsedFraction: 0.9 }));
    expect(d.headers).toEqual({
      'x-gateway-cluster': 'chain_over-budget_from_0',
      'x-envoy-max-retries': '0',
      'x-envoy-retry-on': 'connect-failure,retriable-status-codes',
      'x-envoy-retriable-status-codes': '429',
    });
  });

  it('complexity bound', () => {
    const code = '```ts\nconst x = 1;\n```\n';
    const hard = { messages: Array.from({ length: 12 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: code.repeat(3) + 'x'.repeat(4000) })) };
    const d = ok(decide({ body: hard }));
    expect(d.complexity).toBeGreaterThanOrEqual(0.5);
    expect(d.route.name).toBe('hard');
    expect(ok(decide()).complexity).toBeLessThan(0.5);
  });

  it('latency bound against the observed moving average', () => {
    const latency = new LatencyEwma(0.5);
    const h = { 'x-max-latency-ms': '800' };
    // No observation yet: no evidence against the model.
    expect(ok(decide({ headers: h }, { latency })).route.name).toBe('quick');
    latency.observe('gpt-4o-mini', 2000);
    latency.observe('mistral-large', 3000);
    expect(ok(decide({ headers: h }, { latency })).route.name).toBe('default-chain');
    latency.observe('mistral-large', 100); // avg 1550
    latency.observe('mistral-large', 100); // avg 825
    latency.observe('mistral-large', 100); // avg 462.5
    const d = ok(decide({ headers: h }, { latency }));
    expect([d.route.name, d.chain[0]!.model, d.cluster]).toEqual(['quick', 'mistral-large', 'chain_quick_from_1']);
    expect(ok(decide({ headers: { 'x-max-latency-ms': 'soon' } }, { latency })).route.name).toBe('default-chain');
    expect(ok(decide({}, { latency })).route.name).toBe('default-chain');
  });
});

describe('chain start and end', () => {
  it('starts at the first step that is not cooled down', () => {
    const d = ok(decide({}, { cooled: new Set(['anthropic/claude-opus-4']) }));
    expect(d.cluster).toBe('chain_default-chain_from_1');
    expect(d.chain.map((s) => s.index)).toEqual([1, 2, 3]);
    expect(d.headers['x-envoy-max-retries']).toBe('2');
    const two = ok(decide({}, { cooled: new Set(['anthropic/claude-opus-4', 'openai/gpt-4o']) }));
    expect(two.cluster).toBe('chain_default-chain_from_2');
    // Every step cooled: the chain runs from its start anyway.
    const all = ok(decide({}, { cooled: new Set(catalog.cooldownKeys) }));
    expect(all.cluster).toBe('llm_chain');
  });

  it('skips steps the prompt cannot fit or that lack a capability, and stops before a later one', () => {
    // asked-fast: mistral-small (1,000 tokens, no tools) → gpt-4o-mini → mistral-large
    const long = body('x'.repeat(8000));
    const d = ok(decide({ model: 'fast', body: long }));
    expect([d.route.name, d.cluster, d.chain.map((s) => s.model)]).toEqual(['asked-fast', 'chain_asked-fast_from_1', ['gpt-4o-mini', 'mistral-large']]);
    const tools = ok(decide({ model: 'fast', body: body('hi', { tools: [{ type: 'function', function: { name: 'f' } }] }) }));
    expect(tools.chain[0]!.model).toBe('gpt-4o-mini');
    // max_tokens counts against the window too.
    expect(ok(decide({ model: 'fast', body: body('hi', { max_tokens: 4000 }) })).chain[0]!.model).toBe('gpt-4o-mini');
    expect(ok(decide({ model: 'fast', body: body('hi') })).chain[0]!.model).toBe('mistral-small');
  });

  it('stops the chain before a step that cannot take the prompt (Envoy cannot skip a priority)', () => {
    const cat = buildCatalog(
      config({
        routes: [{ name: 'r', model: 'gpt-4o', fallback: ['mistral-small', 'mistral-large'] }],
      }),
    );
    const d = ok(decide({ body: body('x'.repeat(8000)) }, {}, cat));
    expect(d.chain.map((s) => s.model)).toEqual(['gpt-4o']);
    expect(d.headers['x-envoy-max-retries']).toBe('0');
    expect(d.reason).toContain('stops before step 1');
  });

  it('a prompt no model can take is refused, not sent', () => {
    const huge = body('x'.repeat(1_000_000));
    const d = decide({ body: huge });
    expect(d).toMatchObject({ ok: false, code: 'no_route' });
  });
});

describe('bad input', () => {
  it('a model of the wrong type is refused, never thrown', () => {
    for (const model of [42, ['gpt-4o'], { name: 'gpt-4o' }, true]) {
      expect(decide({ model })).toEqual({ ok: false, code: 'invalid_model', message: '"model" must be a string' });
    }
  });

  it('an unknown model is refused by name (bounded), or routed as absent when configured', () => {
    expect(decide({ model: 'gpt-5o' })).toEqual({ ok: false, code: 'unknown_model', message: 'unknown model "gpt-5o"' });
    const long = decide({ model: 'm'.repeat(10_000) });
    expect(!long.ok && long.message.length).toBeLessThan(200);
    const lenient = buildCatalog(config(), { onUnknownModel: 'route' });
    expect(ok(decide({ model: 'gpt-5o' }, {}, lenient)).route.name).toBe('default-chain');
  });

  it('odd bodies do not throw', () => {
    for (const b of [{}, { messages: 'x' }, { messages: [null, 1, { content: [null, { type: 'text', text: 5 }] }] }, { tools: {} }]) {
      expect(decideRoute({ model: undefined, body: b }, { caller: 'c', headers: () => undefined }, catalog).ok).toBe(true);
    }
  });
});
