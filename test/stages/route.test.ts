/**
 * The `route` stage in process (router pipeline of a real config, harness): each rule kind picks
 * its route and sets the cluster and retry signals Envoy carries out; cooled steps are skipped;
 * bad input is a clear answer in the client's dialect; the API surface (/v1/models, 404s,
 * pinned APIs); and the response headers that tell the client what served.
 */
import { describe, expect, it } from 'vitest';
import { MemoryCooldownStore } from '../../extproc/routing/index.js';
import { ServiceRegistry } from '../../extproc/pipeline/services.js';
import { createLogger } from '../../extproc/telemetry/logger.js';
import { routeChoice } from '../../extproc/stages/route.js';
import { runScript, type Run } from '../helpers/harness.js';
import { KEYS, pipelinesOf, routingConfig } from '../e2e/routingHelpers.js';

const config = routingConfig();
const messages = [{ role: 'user', content: 'hello there' }];

async function route(body: unknown, headers: Record<string, string> = {}, pipelines = pipelinesOf(config)): Promise<Run> {
  return runScript(pipelines.router, { requestHeaders: headers, requestBody: body as object });
}

function decided(run: Run): Record<string, string> {
  return Object.fromEntries(run.requestBody!.setHeaders);
}

function carry(run: Run): Record<string, unknown> {
  return run.requestBody!.metadata.get('ai_gateway')!['carry_route'] as Record<string, unknown>;
}

describe('route stage: rules', () => {
  it('default route: the chain cluster from step 0, all four steps as retries, the triggers as Envoy headers', async () => {
    const run = await route({ model: 'claude-opus-4', messages });
    expect(decided(run)).toEqual({
      'x-gateway-cluster': 'llm_chain',
      'x-envoy-max-retries': '3',
      'x-envoy-retry-on': 'connect-failure,refused-stream,reset,retriable-status-codes',
      'x-envoy-retriable-status-codes': '429,500,502,503,504,529',
      'x-envoy-upstream-rq-per-try-timeout-ms': '2000',
    });
    expect(run.requestBody!.clearRouteCache).toBe(true);
    expect(carry(run)).toEqual({ route: 'main', start: 0, dialect: 'openai', stream: false, includeUsage: false, requested: 'claude-opus-4' });
    // With the attempt stage configured the router leaves the body alone (each try is rewritten there).
    expect(run.requestBody!.body).toBeUndefined();
    expect(run.x.get(routeChoice)).toMatchObject({ route: 'main', chain: ['claude-opus-4', 'gpt-4o', 'claude-sonnet-4', 'mistral-large'] });
  });

  it('caller rule: the caller from the identity stage', async () => {
    const run = await route({ model: 'gpt-4o', messages }, { 'x-caller-id': 'spiffe://cluster.local/ns/shop/sa/checkout' });
    expect(decided(run)['x-gateway-cluster']).toBe('chain_checkout_from_0');
    expect(decided(run)['x-envoy-max-retries']).toBe('1');
  });

  it('preference header, body alias and cost tier rules', async () => {
    expect(decided(await route({ model: 'gpt-4o', messages }, { 'x-model-preference': 'smart' }))['x-gateway-cluster']).toBe('chain_preferred-smart_from_0');
    expect(decided(await route({ model: 'fast', messages }))['x-gateway-cluster']).toBe('chain_asked-fast_from_0');
    // gpt-4o-mini is what `fast` names, so the body rule takes it; mistral-small is cheap too.
    expect(decided(await route({ model: 'gpt-4o-mini', messages }))['x-gateway-cluster']).toBe('chain_asked-fast_from_0');
    expect(decided(await route({ model: 'mistral-small', messages }))['x-gateway-cluster']).toBe('chain_tier-cheap_from_0');
  });

  it('complexity rule: a long, tool-using, code-heavy conversation is routed as hard', async () => {
    const code = '```ts\nconst x = 1;\n```\n';
    const long = Array.from({ length: 12 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${code}${code}${code}${'word '.repeat(3000)}` }));
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
    const run = await route({ model: 'gpt-4o', messages: long, tools });
    expect(decided(run)['x-gateway-cluster']).toBe('chain_hard_from_0');
  });

  it('latency rule: taken only with x-max-latency-ms', async () => {
    expect(decided(await route({ model: 'gpt-4o', messages }, { 'x-max-latency-ms': '500' }))['x-gateway-cluster']).toBe('chain_quick_from_0');
    expect(decided(await route({ model: 'gpt-4o', messages }))['x-gateway-cluster']).toBe('llm_chain');
  });

  it('context fit: a prompt too long for mistral-small starts the fast chain at its next step', async () => {
    const run = await route({ model: 'fast', messages: [{ role: 'user', content: 'word '.repeat(2000) }] });
    expect(decided(run)['x-gateway-cluster']).toBe('chain_asked-fast_from_1');
    expect(decided(run)['x-envoy-max-retries']).toBe('1');
  });

  it('a cooled step is skipped: the chain starts at the first healthy step, one retry fewer', async () => {
    const registry = new ServiceRegistry(createLogger('error'), 0);
    const pipelines = pipelinesOf(config, registry);
    const store = (registry as unknown as { live: Map<string, { instance: unknown }> }).live.get('routing.cooldown')!.instance as MemoryCooldownStore;
    await store.cool('anthropic/claude-opus-4', Date.now() + 60_000);
    const run = await route({ model: 'claude-opus-4', messages }, {}, pipelines);
    expect(decided(run)['x-gateway-cluster']).toBe('chain_main_from_1');
    expect(decided(run)['x-envoy-max-retries']).toBe('2');
    expect(carry(run)['start']).toBe(1);
  });

  it('the Anthropic path carries the Anthropic dialect and the stream flags', async () => {
    const run = await route({ model: 'claude-opus-4', max_tokens: 10, messages, stream: true }, { ':path': '/v1/messages' });
    expect(carry(run)).toMatchObject({ dialect: 'anthropic', stream: true, includeUsage: false });
  });
});

describe('route stage: bad input', () => {
  it('an unknown model: 404 model_not_found in OpenAI shape, not_found_error on /v1/messages', async () => {
    const run = await route({ model: 'gpt-5o', messages });
    expect(run.reply?.status).toBe(404);
    expect(JSON.parse(String(run.reply!.body))).toEqual({ error: { message: expect.stringContaining('gpt-5o'), type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
    const a = await route({ model: 'gpt-5o', max_tokens: 5, messages }, { ':path': '/v1/messages' });
    expect(JSON.parse(String(a.reply!.body))).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
  });

  it('a model of the wrong type: 400 naming the field', async () => {
    const run = await route({ model: { name: 'gpt-4o' }, messages });
    expect(run.reply?.status).toBe(400);
    expect(JSON.parse(String(run.reply!.body)).error).toMatchObject({ message: '"model" must be a string', param: 'model' });
  });

  it('a very long unknown model name is cut in the answer', async () => {
    const run = await route({ model: 'x'.repeat(5000), messages });
    expect(String(run.reply!.body).length).toBeLessThan(400);
  });
});

describe('route stage: what each step can express', () => {
  it('a request the first step’s dialect cannot express is refused at the router, in the client dialect', async () => {
    const run = await route({ model: 'claude-opus-4', messages, n: 3 });
    expect(run.reply?.status).toBe(400);
    expect(JSON.parse(String(run.reply!.body)).error).toMatchObject({ param: 'n', message: expect.stringContaining('claude-opus-4') });
  });

  it('a later step that cannot express it ends the chain before it (fewer retries)', async () => {
    const run = await route({ model: 'gpt-4o', messages, n: 3 }, { 'x-caller-id': 'spiffe://cluster.local/ns/shop/sa/checkout' });
    expect(decided(run)).toMatchObject({ 'x-gateway-cluster': 'chain_checkout_from_0', 'x-envoy-max-retries': '0' });
    expect(run.x.get(routeChoice)!.chain).toEqual(['gpt-4o']);
  });

  it('routing hints do not reach the provider', async () => {
    const run = await route({ model: 'gpt-4o', messages }, { 'x-model-preference': 'smart', 'x-max-latency-ms': '100' });
    expect(run.requestBody!.removeHeaders.has('x-model-preference')).toBe(true);
    expect(run.requestBody!.removeHeaders.has('x-max-latency-ms')).toBe(true);
  });
});

describe('route stage: API surface', () => {
  const get = (path: string, headers: Record<string, string> = {}) => runScript(pipelinesOf(config).router, { requestHeaders: { ':method': 'GET', ':path': path, ...headers } });

  it('GET /v1/models in OpenAI shape from the catalog', async () => {
    const run = await get('/v1/models');
    expect(run.reply?.status).toBe(200);
    const body = JSON.parse(String(run.reply!.body));
    expect(body.object).toBe('list');
    expect(body.data.map((m: { id: string }) => m.id)).toEqual(['claude-opus-4', 'gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'mistral-small', 'mistral-large']);
    expect(body.data[0]).toEqual({ id: 'claude-opus-4', object: 'model', created: expect.any(Number), owned_by: 'anthropic' });
  });

  it('GET /v1/models with Anthropic headers in Anthropic shape; one model by alias', async () => {
    const run = await get('/v1/models', { 'anthropic-version': '2023-06-01' });
    const body = JSON.parse(String(run.reply!.body));
    expect(body).toMatchObject({ has_more: false, first_id: 'claude-opus-4', last_id: 'mistral-large' });
    expect(body.data[0]).toEqual({ type: 'model', id: 'claude-opus-4', display_name: 'claude-opus-4', created_at: expect.stringMatching(/^\d{4}-/) });
    const one = await get('/v1/models/smart');
    expect(JSON.parse(String(one.reply!.body))).toMatchObject({ id: 'claude-opus-4', object: 'model' });
    expect((await get('/v1/models/nope')).reply?.status).toBe(404);
  });

  it('an unserved /v1/ path: 404 in the client dialect; paths outside /v1/ are left to Envoy', async () => {
    const o = await get('/v1/assistants');
    expect(o.reply?.status).toBe(404);
    expect(JSON.parse(String(o.reply!.body)).error.code).toBe('unknown_url');
    const a = await get('/v1/files', { 'x-api-key': 'k' });
    expect(JSON.parse(String(a.reply!.body))).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect((await get('/healthz')).reply).toBeUndefined();
  });

  it('embeddings, responses and count_tokens go to a provider of their own dialect with its key', async () => {
    const emb = await runScript(pipelinesOf(config).router, { requestHeaders: { ':path': '/v1/embeddings', authorization: 'Bearer client' }, requestBody: { model: 'text-embedding-3-small', input: 'hi' } });
    expect(decided(emb)).toMatchObject({ 'x-gateway-cluster': 'openai', 'x-envoy-max-retries': '0', authorization: `Bearer ${KEYS.openai}` });
    const count = await runScript(pipelinesOf(config).router, { requestHeaders: { ':path': '/v1/messages/count_tokens', 'x-api-key': 'client' }, requestBody: { model: 'smart', messages } });
    expect(decided(count)).toMatchObject({ 'x-gateway-cluster': 'anthropic', 'x-api-key': KEYS.anthropic });
    expect(JSON.parse(count.requestBody!.body!.toString()).model).toBe('claude-opus-4-20250514');
    const resp = await runScript(pipelinesOf(config).router, { requestHeaders: { ':method': 'GET', ':path': '/v1/responses/resp_123' } });
    expect(Object.fromEntries(resp.requestHeaders!.setHeaders)).toMatchObject({ 'x-gateway-cluster': 'openai' });
  });
});

describe('route stage: response headers', () => {
  it('x-gateway-route, the model that served (from the attempt metadata) and the attempt count; 529 → 503 for OpenAI clients', async () => {
    const run = await runScript(pipelinesOf(config).router, {
      requestBody: { model: 'claude-opus-4', messages },
      metadata: { ai_gateway: { served_model: 'claude-sonnet-4', served_step: 2 } },
      responseHeaders: { ':status': '529' },
    });
    expect(Object.fromEntries(run.responseHeaders!.setHeaders)).toEqual({
      'x-gateway-route': 'main',
      'x-gateway-model': 'claude-sonnet-4',
      'x-gateway-attempts': '3',
      ':status': '503',
    });
  });

  it('without attempt metadata the first step is reported', async () => {
    const run = await runScript(pipelinesOf(config).router, { requestBody: { model: 'mistral-small', messages }, responseHeaders: {} });
    expect(Object.fromEntries(run.responseHeaders!.setHeaders)).toEqual({ 'x-gateway-route': 'tier-cheap', 'x-gateway-model': 'gpt-4o-mini', 'x-gateway-attempts': '1' });
  });
});
